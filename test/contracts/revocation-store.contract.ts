import type { Awaitable } from './awaitable';
import type { RevocationStore } from '../../src/auth/revocation-store.interface';

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

    it('answers an empty query', async () => {
      expect(await store.revokedAmong([])).toEqual(new Set());
    });
  });
}
