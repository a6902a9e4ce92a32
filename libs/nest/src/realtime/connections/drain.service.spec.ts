import { unitKit } from '../../../../../test/support/unit-kit';
import { DrainService } from './drain.service';

describe('DrainService', () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  it('refuses newcomers at once, spreads the 1001s over the drain, terminates stragglers', async () => {
    const kit = unitKit({
      SHUTDOWN_DRAIN_MS: '1000',
      SHUTDOWN_TIMEOUT_MS: '3000',
      RECONNECT_SPREAD_MS: '8000',
    });
    const held = Array.from({ length: 100 }, (_, i) => kit.connect(`u${i}`));
    const closedAt = new Map<number, number>();
    held.forEach(({ socket }, i) => {
      const close = socket.close.bind(socket);
      socket.close = (code: number, reason: string) => {
        closedAt.set(i, Date.now());
        close(code, reason); // the fake never reports the close back: every socket straggles
      };
    });
    const drained = new DrainService(kit.hub, kit.config).drain(Date.now() + 3000);
    expect(kit.hub.draining).toBe(true);
    await jest.advanceTimersByTimeAsync(500);
    expect(closedAt.size).toBeGreaterThan(30);
    expect(closedAt.size).toBeLessThan(70);
    await jest.advanceTimersByTimeAsync(600);
    expect(closedAt.size).toBe(100);
    expect(held.every(({ socket }) => socket.closed?.code === 1001)).toBe(true);
    // Each says when to come back, spread over RECONNECT_SPREAD_MS.
    const hints = held.map(({ socket }) => {
      const match = /^reconnect in (\d+) ms$/.exec(socket.closed?.reason ?? '');
      return match ? Number(match[1]) : -1;
    });
    expect(Math.min(...hints)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...hints)).toBeLessThanOrEqual(8000);
    expect(Math.max(...hints) - Math.min(...hints)).toBeGreaterThan(4000);
    expect(held.some(({ socket }) => socket.terminated)).toBe(false);
    await jest.advanceTimersByTimeAsync(2000);
    await drained;
    expect(held.every(({ socket }) => socket.terminated)).toBe(true);
    kit.dispose();
  });
});
