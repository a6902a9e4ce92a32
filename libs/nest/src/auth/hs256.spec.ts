import { createHmac, createSecretKey } from 'node:crypto';
import { JsonWebTokenError, sign, TokenExpiredError, verify } from 'jsonwebtoken';
import { verifyHs256 } from './hs256';
import { TokenError } from './token.errors';

const SECRET = 'hs256-test-secret-that-is-long-enough-0123456789';
const key = createSecretKey(Buffer.from(SECRET));
const NOW = 1_900_000_000;
const rules = { issuer: 'https://id.example', audience: 'switchboard', clockToleranceS: 5 };

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A token assembled by hand, so that headers and payloads jsonwebtoken would not sign are tried. */
const forge = (header: unknown, payload: unknown, secret = SECRET) => {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
};
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'ann',
  iss: rules.issuer,
  aud: rules.audience,
  exp: NOW + 60,
  ...extra,
});
const valid = forge({ alg: 'HS256', typ: 'JWT' }, claims());

/** What jsonwebtoken, the reference, says of the token under the same rules. */
function reference(token: string): 'accepted' | 'expired' | 'invalid' {
  try {
    verify(token, key, {
      algorithms: ['HS256'],
      issuer: rules.issuer,
      audience: rules.audience,
      clockTolerance: rules.clockToleranceS,
      clockTimestamp: NOW,
    });
    return 'accepted';
  } catch (error) {
    if (error instanceof TokenExpiredError) {
      return 'expired';
    }
    if (error instanceof JsonWebTokenError) {
      return 'invalid';
    }
    throw error;
  }
}

function ours(token: string): 'accepted' | 'expired' | 'invalid' {
  try {
    verifyHs256(token, key, rules, NOW);
    return 'accepted';
  } catch (error) {
    if (
      error instanceof TokenError &&
      (error.failure === 'expired' || error.failure === 'invalid')
    ) {
      return error.failure;
    }
    throw error;
  }
}

describe('verifyHs256', () => {
  it('returns the payload of a valid token', () => {
    expect(verifyHs256(valid, key, rules, NOW)).toEqual(claims());
    const signed = sign(claims(), SECRET, { algorithm: 'HS256' });
    expect(verifyHs256(signed, key, rules, NOW)).toMatchObject(claims());
  });

  it.each<[string, string, 'accepted' | 'expired' | 'invalid']>([
    ['valid', valid, 'accepted'],
    ['signed by jsonwebtoken', sign(claims(), SECRET), 'accepted'],
    ['expired', forge({ alg: 'HS256' }, claims({ exp: NOW - 10 })), 'expired'],
    ['expired within the tolerance', forge({ alg: 'HS256' }, claims({ exp: NOW - 4 })), 'accepted'],
    [
      'expiring exactly at the tolerance',
      forge({ alg: 'HS256' }, claims({ exp: NOW - 5 })),
      'expired',
    ],
    ['exp not a number', forge({ alg: 'HS256' }, claims({ exp: String(NOW + 60) })), 'invalid'],
    ['not yet valid', forge({ alg: 'HS256' }, claims({ nbf: NOW + 10 })), 'invalid'],
    ['nbf within the tolerance', forge({ alg: 'HS256' }, claims({ nbf: NOW + 5 })), 'accepted'],
    ['nbf not a number', forge({ alg: 'HS256' }, claims({ nbf: 'soon' })), 'invalid'],
    ['another issuer', forge({ alg: 'HS256' }, claims({ iss: 'https://evil' })), 'invalid'],
    ['no issuer', forge({ alg: 'HS256' }, claims({ iss: undefined })), 'invalid'],
    ['another audience', forge({ alg: 'HS256' }, claims({ aud: 'other' })), 'invalid'],
    [
      'audience among several',
      forge({ alg: 'HS256' }, claims({ aud: ['x', 'switchboard'] })),
      'accepted',
    ],
    ['no audience', forge({ alg: 'HS256' }, claims({ aud: undefined })), 'invalid'],
    ['alg none', `${b64({ alg: 'none' })}.${b64(claims())}.`, 'invalid'],
    ['alg none with a signature', forge({ alg: 'none' }, claims()), 'invalid'],
    ['alg HS384', forge({ alg: 'HS384' }, claims()), 'invalid'],
    ['alg hs256 (lower case)', forge({ alg: 'hs256' }, claims()), 'invalid'],
    ['no alg', forge({ typ: 'JWT' }, claims()), 'invalid'],
    [
      'another secret',
      forge({ alg: 'HS256' }, claims(), 'another-secret-of-enough-length-012345'),
      'invalid',
    ],
    [
      'payload changed after signing',
      `${valid.split('.')[0]}.${b64(claims({ sub: 'root' }))}.${valid.split('.')[2]}`,
      'invalid',
    ],
    ['signature cut short', valid.slice(0, -1), 'invalid'],
    ['signature one character longer', `${valid}A`, 'invalid'],
    ['no signature', valid.slice(0, valid.lastIndexOf('.') + 1), 'invalid'],
    ['two parts', valid.slice(0, valid.lastIndexOf('.')), 'invalid'],
    ['four parts', `${valid}.x`, 'invalid'],
    ['empty', '', 'invalid'],
    ['dots only', '..', 'invalid'],
    ['header not JSON', `bm90IGpzb24.${valid.split('.').slice(1).join('.')}`, 'invalid'],
    ['header an array', forge(['HS256'], claims()), 'invalid'],
    ['payload a string', forge({ alg: 'HS256' }, 'hello'), 'invalid'],
    ['payload null', forge({ alg: 'HS256' }, null), 'invalid'],
    ['header with padding', `${b64({ alg: 'HS256' })}=.${b64(claims())}.x`, 'invalid'],
  ])('%s: the same verdict as jsonwebtoken', (_, token, verdict) => {
    expect(ours(token)).toBe(verdict);
    expect(reference(token)).toBe(verdict);
  });

  it('names what is wrong', () => {
    expect(() => verifyHs256(forge({ alg: 'none' }, claims()), key, rules, NOW)).toThrow(
      'access token rejected: invalid algorithm',
    );
    expect(() => verifyHs256(valid.slice(0, -2) + 'xx', key, rules, NOW)).toThrow(
      'access token rejected: invalid signature',
    );
    expect(() =>
      verifyHs256(forge({ alg: 'HS256' }, claims({ aud: 'x' })), key, rules, NOW),
    ).toThrow('access token rejected: jwt audience invalid. expected: switchboard');
  });

  it('without issuer or audience rules, accepts tokens without those claims', () => {
    const bare = forge({ alg: 'HS256' }, { sub: 'ann', exp: NOW + 60 });
    const open = { issuer: undefined, audience: undefined, clockToleranceS: 0 };
    expect(verifyHs256(bare, key, open, NOW)).toEqual({ sub: 'ann', exp: NOW + 60 });
  });

  it('refuses a token over 16 KiB before decoding it', () => {
    const huge = forge({ alg: 'HS256' }, claims({ pad: 'x'.repeat(20_000) }));
    expect(() => verifyHs256(huge, key, rules, NOW)).toThrow('jwt too long');
  });
});
