import { type OnApplicationShutdown } from '@nestjs/common';
import { ExpiringMap } from '../common/expiring-map';
import type { RevocationStore } from './revocation-store.interface';

/** In-process revocations for the embedded (single-instance) mode. */
export class MemoryRevocationStore implements RevocationStore, OnApplicationShutdown {
  private readonly revoked = new ExpiringMap<string, number>();

  revoke(sessionId: string, ttlMs: number): Promise<void> {
    this.revoked.set(sessionId, Date.now() + ttlMs, ttlMs);
    return Promise.resolve();
  }

  list(): Promise<Array<{ sessionId: string; ttlMs: number }>> {
    const now = Date.now();
    const live = [...this.revoked.keys()].flatMap((sessionId) => {
      const until = this.revoked.get(sessionId);
      return until === undefined ? [] : [{ sessionId, ttlMs: until - now }];
    });
    return Promise.resolve(live);
  }

  isRevoked(sessionId: string): Promise<boolean> {
    return Promise.resolve(this.revoked.has(sessionId));
  }

  revokedAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    return Promise.resolve(new Set(sessionIds.filter((id) => this.revoked.has(id))));
  }

  onApplicationShutdown(): void {
    this.revoked.dispose();
  }
}
