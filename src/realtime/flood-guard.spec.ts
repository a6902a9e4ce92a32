import { FloodGuard } from './flood-guard';

describe('FloodGuard', () => {
  it('drops past the limit and closes at twice the limit', () => {
    const guard = new FloodGuard(3, 1000);
    const verdicts = Array.from({ length: 6 }, () => guard.message(5000));
    expect(verdicts).toEqual(['ok', 'ok', 'ok', 'limited', 'limited', 'close']);
    expect(guard.retryAfterMs(5400)).toBe(600);
  });
  it('starts over in the next window', () => {
    const guard = new FloodGuard(2, 1000);
    expect([guard.message(1000), guard.message(1200), guard.message(1500)]).toEqual([
      'ok',
      'ok',
      'limited',
    ]);
    expect(guard.message(2000)).toBe('ok');
  });
  it('closes at the tenth error in a window', () => {
    const guard = new FloodGuard(100, 1000);
    const closes = Array.from({ length: 10 }, (_, i) => guard.error(1000 + i));
    expect(closes.indexOf(true)).toBe(9);
    expect(guard.error(3000)).toBe(false);
  });
});
