import { ExpiringMap } from './expiring-map';

describe('ExpiringMap', () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  it('hides entries at once when they expire, and sweeps them later', () => {
    const map = new ExpiringMap<string, number>(undefined, 1000);
    map.set('a', 1, 500);
    map.set('b', 2, 5000);
    expect(map.get('a')).toBe(1);
    jest.advanceTimersByTime(500);
    expect(map.has('a')).toBe(false);
    jest.advanceTimersByTime(1000);
    expect(map.size).toBe(1);
    expect(map.take('b')).toBe(2);
    expect(map.take('b')).toBeUndefined();
    map.dispose();
  });
});
