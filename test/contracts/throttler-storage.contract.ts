import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Awaitable } from './awaitable';

/** The throttler the contract counts under (a Redis storage must count it cluster-wide). */
export const CONTRACT_THROTTLER = 'contract';

/**
 * What `HttpThrottlerGuard` relies on from an `@nestjs/throttler` storage, in memory
 * (`ThrottlerStorageService`) or in Redis (`RedisThrottlerStorage`): with the block as long as the
 * window, as the guard asks, `limit` hits pass and the next ones are blocked, with the whole
 * seconds left of the block for `Retry-After`. What a storage answers while a tracker is not
 * blocked, besides `totalHits` and `isBlocked`, is not part of it.
 */
export function describeThrottlerStorage(
  name: string,
  factory: () => Awaitable<{ storage: ThrottlerStorage; close(): Awaitable<void> }>,
): void {
  describe(`ThrottlerStorage contract: ${name}`, () => {
    let storage: ThrottlerStorage;
    let close: () => Awaitable<void>;
    beforeAll(async () => ({ storage, close } = await factory()));
    afterAll(async () => {
      await close();
    });
    const hit = (key: string, limit: number, ttlMs: number) =>
      storage.increment(key, ttlMs, limit, ttlMs, CONTRACT_THROTTLER);

    it('passes up to the limit in a window, then blocks with the seconds left', async () => {
      const results = [];
      for (let i = 0; i < 4; i++) {
        results.push(await hit('k1', 3, 60_000));
      }
      expect(results.map((r) => [r.totalHits, r.isBlocked])).toEqual([
        [1, false],
        [2, false],
        [3, false],
        [4, true],
      ]);
      expect(results[3].timeToBlockExpire).toBeGreaterThanOrEqual(59);
      expect(results[3].timeToBlockExpire).toBeLessThanOrEqual(60);
      expect(results[3].timeToExpire).toBeGreaterThanOrEqual(59);
      expect(results[3].timeToExpire).toBeLessThanOrEqual(60);
      expect((await hit('k1', 3, 60_000)).isBlocked).toBe(true);
    });

    it('keeps keys apart', async () => {
      await hit('k2', 1, 60_000);
      expect((await hit('k2', 1, 60_000)).isBlocked).toBe(true);
      expect(await hit('k3', 1, 60_000)).toMatchObject({ totalHits: 1, isBlocked: false });
    });

    it('counts from one again once the block and the window have passed', async () => {
      await hit('k4', 1, 150);
      expect((await hit('k4', 1, 150)).isBlocked).toBe(true);
      // Redis expires the keys in real time: no clock to move.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await hit('k4', 1, 150)).toMatchObject({ totalHits: 1, isBlocked: false });
    });

    it('passes exactly `limit` of concurrent hits', async () => {
      const results = await Promise.all(Array.from({ length: 25 }, () => hit('k5', 10, 60_000)));
      expect(results.filter((r) => !r.isBlocked)).toHaveLength(10);
    });
  });
}
