import { generateKeyPairSync } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { SignJWT } from 'jose';
import { Clock } from '../config/clock';
import { loadConfig } from '../config/config.schema';
import * as hs256 from './hs256';
import { TokenError } from './token.errors';
import {
  jwtModuleOptions,
  TokenVerifier,
  VERIFIED_TOKEN_MAX_AGE_MS,
  VERIFIED_TOKENS_MAX_BYTES,
  verifiedTokensKept,
} from './token-verifier.service';

const SECRET = 'verifier-test-secret-that-is-long-enough-0123';
const now = () => Math.floor(Date.now() / 1000);
const sign = (claims: Record<string, unknown>, secret = SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

describe('TokenVerifier', () => {
  const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET });
  const verifier = new TokenVerifier(new JwtService(jwtModuleOptions(config)), new Clock(), config);
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

describe('TokenVerifier, verified tokens remembered', () => {
  // MAX_CONNECTIONS 1,000: the cache keeps its floor of 10,000 tokens.
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: SECRET,
    JWT_CLOCK_TOLERANCE_S: '0',
    MAX_CONNECTIONS: '1000',
  });

  /** A verifier on a clock the test moves, and how often it really verified a signature. */
  function setUp() {
    let offsetMs = 0;
    const clock = new (class extends Clock {
      override now(): number {
        return Date.now() + offsetMs;
      }
    })();
    const jwt = new JwtService(jwtModuleOptions(config));
    // HS256 is verified with node:crypto (verifyHs256), anything else through JwtService.
    const verifyAsync = jest.spyOn(jwt, 'verifyAsync');
    const hs256Verify = jest.spyOn(hs256, 'verifyHs256');
    hs256Verify.mockClear(); // the module's spy outlives each set-up
    const verifier = new TokenVerifier(jwt, clock, config);
    return {
      verifier,
      verified: () => verifyAsync.mock.calls.length + hs256Verify.mock.calls.length,
      advance: (ms: number) => (offsetMs += ms),
    };
  }

  it('verifies a token once, then answers from memory (a copy) until it expires', async () => {
    const { verifier, verified, advance } = setUp();
    const token = await sign({ sub: 'ann', sid: 's1', exp: now() + 60 });
    const first = await verifier.verify(token);
    const again = await verifier.verify(token);
    expect(again).toEqual(first);
    expect(again).not.toBe(first);
    expect(verified()).toBe(1);
    advance(61_000); // past exp: verified again, and refused as expired
    await expect(verifier.verify(token)).rejects.toMatchObject({ failure: 'expired' });
    expect(verified()).toBe(2);
  });

  it('verifies again after VERIFIED_TOKEN_MAX_AGE_MS however long the token lives', async () => {
    const { verifier, verified, advance } = setUp();
    const token = await sign({ sub: 'ben', exp: now() + 3600 });
    await verifier.verify(token);
    advance(VERIFIED_TOKEN_MAX_AGE_MS - 1000);
    await verifier.verify(token);
    expect(verified()).toBe(1);
    advance(2000);
    await verifier.verify(token);
    expect(verified()).toBe(2);
  });

  it('remembers nothing of a refused token, and at most verifiedTokensKept tokens', async () => {
    const { verifier, verified } = setUp();
    const bad = await sign({ sub: 'cat', exp: now() + 60 }, 'y'.repeat(40));
    await expect(verifier.verify(bad)).rejects.toMatchObject({ failure: 'invalid' });
    await expect(verifier.verify(bad)).rejects.toMatchObject({ failure: 'invalid' });
    expect(verified()).toBe(2);

    const exp = now() + 600;
    const first = await sign({ sub: 'u0', exp });
    await verifier.verify(first);
    for (let i = 1; i <= verifiedTokensKept(config); i++) {
      await verifier.verify(await sign({ sub: `u${i}`, exp }));
    }
    const before = verified();
    await verifier.verify(first); // the least recently used went first
    expect(verified()).toBe(before + 1);
  });

  it('keeps at most VERIFIED_TOKENS_MAX_BYTES of sessions, however large their rooms claims', async () => {
    const big = new TokenVerifier(new JwtService(jwtModuleOptions(config)), new Clock(), config);
    const rooms = Array.from({ length: 64 }, (_, i) => `${'r'.repeat(120)}-${i}:*`);
    const exp = now() + 600;
    for (let i = 0; i < 1200; i++) {
      await big.verify(await sign({ sub: `u${i}`, exp, rooms }));
      expect(big.remembered.bytes).toBeLessThanOrEqual(VERIFIED_TOKENS_MAX_BYTES);
    }
    // Each of these sessions holds about 17 KB: the bytes, not the count, bound the cache.
    expect(big.remembered.tokens).toBeLessThan(1200);
    expect(big.remembered.tokens).toBeGreaterThan(VERIFIED_TOKENS_MAX_BYTES / 20_000);
    const { tokens, bytes } = big.remembered;
    big.forget(await sign({ sub: 'u1199', exp, rooms })); // the same claims sign the same token
    expect(big.remembered.tokens).toBe(tokens - 1);
    expect(big.remembered.bytes).toBeLessThan(bytes);
  });

  it('keeps room for twice the connections an instance admits, and 10,000 at least', () => {
    expect(verifiedTokensKept(config)).toBe(10_000);
    const big = loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET, MAX_CONNECTIONS: '50000' });
    expect(verifiedTokensKept(big)).toBe(100_000);
  });
});
