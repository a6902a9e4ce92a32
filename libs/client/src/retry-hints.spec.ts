import { reconnectInMs, retryAfterMs } from './retry-hints';

describe('retry hints', () => {
  it('reads a 1001 reason’s `reconnect in N ms`', () => {
    expect(reconnectInMs('reconnect in 4310 ms')).toBe(4310);
    expect(reconnectInMs('server shutting down')).toBeNull();
    expect(reconnectInMs('')).toBeNull();
  });

  it('prefers the body’s retryAfterMs, else reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('3', { retryAfterMs: 2345 })).toBe(2345);
    expect(retryAfterMs('3', { message: 'busy' })).toBe(3000);
    expect(retryAfterMs('3', null)).toBe(3000);
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterMs('Tue, 01 Jan 2030 00:00:07 GMT', null, now)).toBe(7000);
    expect(retryAfterMs(null, null)).toBeNull();
    expect(retryAfterMs('soon', null)).toBeNull();
    expect(retryAfterMs('-1', null)).toBeNull();
  });
});
