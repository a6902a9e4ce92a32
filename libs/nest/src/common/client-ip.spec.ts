import type { IncomingMessage } from 'node:http';
import { bearerToken } from './bearer';
import { clientIp } from './client-ip';

const req = (remoteAddress: string, forwarded?: string): IncomingMessage =>
  ({
    socket: { remoteAddress },
    headers: forwarded ? { 'x-forwarded-for': forwarded } : {},
  }) as unknown as IncomingMessage;

describe('clientIp', () => {
  it('ignores X-Forwarded-For unless TRUST_PROXY', () => {
    expect(clientIp(req('10.0.0.1', '6.6.6.6'), false)).toBe('10.0.0.1');
  });
  it('takes the last hop behind a trusted proxy', () => {
    expect(clientIp(req('10.0.0.1', '6.6.6.6, 203.0.113.7'), true)).toBe('203.0.113.7');
    expect(clientIp(req('10.0.0.1'), true)).toBe('10.0.0.1');
  });
});

describe('bearerToken', () => {
  it('reads Authorization: Bearer <token> and nothing else', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
