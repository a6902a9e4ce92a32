import { generateKeyPairSync } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { SignJWT } from 'jose';
import { Clock } from '../config/clock';
import { loadConfig } from '../config/config.schema';
import { TokenError } from './token.errors';
import { jwtModuleOptions, TokenVerifier } from './token-verifier.service';

const SECRET = 'verifier-test-secret-that-is-long-enough-0123';
const now = () => Math.floor(Date.now() / 1000);
const sign = (claims: Record<string, unknown>, secret = SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

describe('TokenVerifier', () => {
  const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET });
  const verifier = new TokenVerifier(new JwtService(jwtModuleOptions(config)), new Clock());
  const failure = (token: Promise<string>) =>
    token
      .then((t) => verifier.verify(t))
      .then(
        () => 'accepted',
        (error: unknown) => (error instanceof TokenError ? error.failure : String(error)),
      );

  it('turns a valid token into a session: sid, else jti, else the token hash', async () => {
    const exp = now() + 60;
    expect(await verifier.verify(await sign({ sub: 'ann', sid: 's1', exp, name: 'Ann' }))).toEqual({
      userId: 'ann',
      name: 'Ann',
      sessionId: 's1',
      expiresAt: exp * 1000,
      rooms: null,
    });
    expect((await verifier.verify(await sign({ sub: 'ann', jti: 'j1', exp }))).sessionId).toBe(
      'j1',
    );
    expect((await verifier.verify(await sign({ sub: 'ann', exp }))).sessionId).toMatch(
      /^[A-Za-z0-9_-]{43}$/,
    );
  });

  it.each([
    ['expired', () => sign({ sub: 'a', exp: now() - 100 }), 'expired'],
    ['without exp', () => sign({ sub: 'a' }), 'invalid'],
    ['with exp more than a year ahead', () => sign({ sub: 'a', exp: 1e300 }), 'invalid'],
    ['without sub', () => sign({ exp: now() + 60 }), 'invalid'],
    [
      'signed with another secret',
      () => sign({ sub: 'a', exp: now() + 60 }, 'x'.repeat(40)),
      'invalid',
    ],
    [
      'with 65 room patterns',
      () => sign({ sub: 'a', exp: now() + 60, rooms: Array(65).fill('r:*') }),
      'invalid',
    ],
    [
      'signed RS256 (the algorithm comes from the configuration)',
      () =>
        new SignJWT({ sub: 'a', exp: now() + 60 })
          .setProtectedHeader({ alg: 'RS256' })
          .sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
      'invalid',
    ],
  ])('refuses a token %s', async (_, make, expected) => {
    expect(await failure(make())).toBe(expected);
  });
});
