import type { OnApplicationShutdown } from '@nestjs/common';
import { ExpiringMap } from '../common/expiring-map';
import type { Clock } from '../config/clock';
import type { TicketClaims, TicketStore } from './ticket-store.interface';

/** In-process tickets for the embedded (single-instance) mode. */
export class MemoryTicketStore implements TicketStore, OnApplicationShutdown {
  private readonly tickets: ExpiringMap<string, TicketClaims>;

  constructor(clock: Clock) {
    this.tickets = new ExpiringMap(() => clock.now());
  }

  put(hash: string, claims: TicketClaims, ttlMs: number): Promise<void> {
    this.tickets.set(hash, claims, ttlMs);
    return Promise.resolve();
  }

  take(hash: string): Promise<TicketClaims | null> {
    return Promise.resolve(this.tickets.take(hash) ?? null);
  }

  onApplicationShutdown(): void {
    this.tickets.dispose();
  }
}
