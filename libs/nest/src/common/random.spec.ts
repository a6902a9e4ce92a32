import { randomToken } from './random';

describe('randomToken', () => {
  it('answers base64url of the asked length, never the same twice, across pool refills', () => {
    const tokens = Array.from({ length: 1000 }, () => randomToken(32)); // about 8 refills
    expect(tokens.every((token) => /^[A-Za-z0-9_-]{43}$/.test(token))).toBe(true);
    expect(new Set(tokens).size).toBe(1000);
    expect(Buffer.from(randomToken(6), 'base64url')).toHaveLength(6);
    expect(Buffer.from(randomToken(5000), 'base64url')).toHaveLength(5000);
  });
});
