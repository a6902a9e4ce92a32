import { closeAction, CloseCode, retryAfterReason, retryAfterSeconds } from './close-codes';

describe('close codes', () => {
  it('map to the client reactions of docs/sdk.md', () => {
    expect(closeAction(CloseCode.Normal)).toBe('none');
    expect(closeAction(CloseCode.GoingAway)).toBe('reconnect');
    expect(closeAction(CloseCode.Unauthorized)).toBe('new-ticket');
    expect(closeAction(CloseCode.SessionExpired)).toBe('refresh-token');
    expect(closeAction(CloseCode.SessionRevoked)).toBe('signed-out');
    expect(closeAction(CloseCode.Replaced)).toBe('replaced');
    expect(closeAction(CloseCode.TooManyAttempts)).toBe('wait');
    expect(closeAction(4999)).toBe('reconnect');
  });

  it('round-trip the 4029 retry hint, rounding up to whole seconds', () => {
    expect(retryAfterReason(41.2)).toBe('retry after 42 s');
    expect(retryAfterReason(0.01)).toBe('retry after 1 s');
    expect(retryAfterSeconds('retry after 42 s')).toBe(42);
    expect(retryAfterSeconds('something else')).toBeNull();
  });
});
