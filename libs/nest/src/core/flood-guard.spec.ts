import { FloodGuard } from './flood-guard';

describe('FloodGuard', () => {
  it('passes a burst of the limit, drops past it and closes at twice the limit', () => {
    const guard = new FloodGuard(3, 1000);
    const verdicts = Array.from({ length: 6 }, () => guard.message(5000));
    expect(verdicts).toEqual(['ok', 'ok', 'ok', 'limited', 'limited', 'close']);
  });

  it('says when the next message passes', () => {
    const guard = new FloodGuard(2, 1000);
    guard.message(1000);
    guard.message(1000);
    expect(guard.message(1000)).toBe('limited');
    expect(guard.retryAfterMs(1000)).toBe(500);
    expect(guard.retryAfterMs(1400)).toBe(100);
    expect(guard.message(1500)).toBe('ok');
  });

  it('never limits a client that keeps to the rate, whatever the jitter', () => {
    // 20 per 10 s, sent at exactly 2 per second with ±200 ms of jitter, for ten minutes.
    const guard = new FloodGuard(20, 10_000);
    let at = 1000;
    for (let i = 0; i < 1200; i++) {
      const jitter = ((i * 7919) % 400) - 200;
      expect(guard.message(at + jitter)).toBe('ok');
      at += 500;
    }
  });

  it('refills as time passes: a burst, a pause, and another burst', () => {
    const guard = new FloodGuard(5, 1000);
    expect(Array.from({ length: 5 }, () => guard.message(1000))).toEqual(Array(5).fill('ok'));
    expect(guard.message(1000)).toBe('limited');
    expect(Array.from({ length: 5 }, () => guard.message(2000))).toEqual(Array(5).fill('ok'));
  });

  it('closes a client that sends at twice the rate for long', () => {
    const guard = new FloodGuard(10, 1000);
    const verdicts: string[] = [];
    for (let i = 0; i < 100 && !verdicts.includes('close'); i++) {
      verdicts.push(guard.message(1000 + i * 50)); // 20 per second against 10
    }
    expect(verdicts).toContain('limited');
    expect(verdicts[verdicts.length - 1]).toBe('close');
  });

  it('closes at the tenth error in a burst, and forgives errors spread over time', () => {
    const guard = new FloodGuard(100, 1000);
    const closes = Array.from({ length: 10 }, (_, i) => guard.error(1000 + i));
    expect(closes.indexOf(true)).toBe(9);
    const calm = new FloodGuard(100, 1000);
    expect(Array.from({ length: 50 }, (_, i) => calm.error(1000 + i * 200))).not.toContain(true);
  });
});
