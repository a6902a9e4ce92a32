import type { Awaitable } from './awaitable';
import type { RateLimiter } from '../../libs/nest/src/rate-limit/rate-limiter.interface';

/** What every RateLimiter guarantees (rate-limiter.interface.ts). */
export function describeRateLimiter(
  name: string,
  factory: () => Awaitable<{ limiter: RateLimiter; close(): Awaitable<void> }>,
): void {
  describe(`RateLimiter contract: ${name}`, () => {
    let limiter: RateLimiter;
    let close: () => Awaitable<void>;
    beforeAll(async () => ({ limiter, close } = await factory()));
    afterAll(async () => {
      await close();
    });

    it('allows up to the limit in a window, then refuses with the time to reset', async () => {
      const results = [];
      for (let i = 0; i < 4; i++) {
        results.push(await limiter.hit('k1', 3, 60_000));
      }
      expect(results.map((r) => [r.count, r.allowed])).toEqual([
        [1, true],
        [2, true],
        [3, true],
        [4, false],
      ]);
      expect(results[3].resetInMs).toBeGreaterThan(55_000);
      expect(results[3].resetInMs).toBeLessThanOrEqual(60_000);
    });

    it('keeps keys apart', async () => {
      await limiter.hit('k2', 1, 60_000);
      expect((await limiter.hit('k3', 1, 60_000)).allowed).toBe(true);
    });

    it('starts a new window after windowMs', async () => {
      await limiter.hit('k4', 1, 150);
      expect((await limiter.hit('k4', 1, 150)).allowed).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await limiter.hit('k4', 1, 150)).toMatchObject({ count: 1, allowed: true });
    });

    it('counts concurrent hits exactly', async () => {
      const results = await Promise.all(
        Array.from({ length: 25 }, () => limiter.hit('k5', 10, 60_000)),
      );
      expect(results.map((r) => r.count).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 25 }, (_, i) => i + 1),
      );
      expect(results.filter((r) => r.allowed)).toHaveLength(10);
    });
  });
}
