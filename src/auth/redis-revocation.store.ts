import type { RedisConnections } from '../redis/redis.connections';
import type { RevocationStore } from './revocation-store.interface';

const MGET_CHUNK = 500;

/** Revoked session ids as Redis keys that expire with the token. */
export class RedisRevocationStore implements RevocationStore {
  constructor(private readonly redis: RedisConnections) {}

  async revoke(sessionId: string, ttlMs: number): Promise<void> {
    await this.redis.run('revocation', (r) => r.set(this.key(sessionId), '1', 'PX', ttlMs));
  }

  async isRevoked(sessionId: string): Promise<boolean> {
    return (await this.redis.run('revocation', (r) => r.exists(this.key(sessionId)))) === 1;
  }

  async revokedAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    const revoked = new Set<string>();
    for (let start = 0; start < sessionIds.length; start += MGET_CHUNK) {
      const chunk = sessionIds.slice(start, start + MGET_CHUNK);
      const values = await this.redis.run('revocation', (r) =>
        r.mget(chunk.map((id) => this.key(id))),
      );
      values.forEach((value, index) => value !== null && revoked.add(chunk[index]));
    }
    return revoked;
  }

  private key(sessionId: string): string {
    return this.redis.key('revoked', sessionId);
  }
}
