import { Backoff } from './backoff';

describe('Backoff', () => {
  it('uses full jitter: the first retry within 1 s, doubling windows, capped at 30 s', () => {
    const highest = new Backoff({ random: () => 0.999999 });
    const delays = Array.from({ length: 8 }, () => highest.next());
    expect(delays).toEqual([999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
    const lowest = new Backoff({ random: () => 0 });
    expect(lowest.next()).toBe(0);
  });

  it('starts over after reset', () => {
    const backoff = new Backoff({ random: () => 0.5 });
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(500);
  });
});
