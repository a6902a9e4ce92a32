import type { Awaitable } from './awaitable';
import type { RevocationStore } from '../../libs/nest/src/auth/revocation-store.interface';

/** What every RevocationStore guarantees (revocation-store.interface.ts). */
export function describeRevocationStore(
  name: string,
  factory: () => Awaitable<{ store: RevocationStore; close(): Awaitable<void> }>,
): void {
  describe(`RevocationStore contract: ${name}`, () => {
    let store: RevocationStore;
    let close: () => Awaitable<void>;
    beforeAll(async () => ({ store, close } = await factory()));
    afterAll(async () => {
      await close();
    });

    it('remembers a revocation for its ttl', async () => {
      expect(await store.isRevoked('s1')).toBe(false);
      await store.revoke('s1', 200);
      expect(await store.isRevoked('s1')).toBe(true);
      expect(await store.revokedAmong(['s0', 's1', 's2'])).toEqual(new Set(['s1']));
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(await store.isRevoked('s1')).toBe(false);
    });

    it('lists every live revocation with the time it has left', async () => {
      await store.revoke('listed-1', 60_000);
      await store.revoke('listed-2', 120_000);
      const listed = (await store.list()).filter((r) => r.sessionId.startsWith('listed-'));
      expect(listed.map((r) => r.sessionId).sort()).toEqual(['listed-1', 'listed-2']);
      const ttl = Object.fromEntries(listed.map((r) => [r.sessionId, r.ttlMs]));
      expect(ttl['listed-1']).toBeGreaterThan(50_000);
      expect(ttl['listed-1']).toBeLessThanOrEqual(60_000);
      expect(ttl['listed-2']).toBeGreaterThan(110_000);
    });

    it('answers an empty query', async () => {
      expect(await store.revokedAmong([])).toEqual(new Set());
    });
  });
}
