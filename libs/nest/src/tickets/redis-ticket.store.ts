import type { RedisConnections } from '../redis/redis.connections';
import type { TicketClaims, TicketStore } from './ticket-store.interface';

/** Tickets in Redis: `SET … PX` to store, `GETDEL` to redeem (atomic, once, on any instance). */
export class RedisTicketStore implements TicketStore {
  constructor(private readonly redis: RedisConnections) {}

  async put(hash: string, claims: TicketClaims, ttlMs: number): Promise<void> {
    await this.redis.run('ticket', (r) =>
      r.set(this.redis.key('ticket', hash), JSON.stringify(claims), 'PX', ttlMs),
    );
  }

  async take(hash: string): Promise<TicketClaims | null> {
    const value = await this.redis.run('ticket', (r) => r.getdel(this.redis.key('ticket', hash)));
    return value === null ? null : (JSON.parse(value) as TicketClaims);
  }
}
