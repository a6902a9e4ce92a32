import { TokenVerifier } from '../../libs/nest/src/auth/token-verifier.service';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK } from 'jose';
import { startApp, TEST_ORIGIN, type TestApp } from '../support/app';
import { ecKeys, hsToken, noneToken, rsaKeys, seconds, signWith, tamper } from '../support/jwt';

async function ticketStatus(
  app: TestApp,
  token: string,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${app.http}/auth/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: await response.json() };
}

describe('access tokens with JWT_SECRET (HS256)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp({
      JWT_ISSUER: 'https://idp.test',
      JWT_AUDIENCE: 'switchboard',
      JWT_CLOCK_TOLERANCE_S: '5',
    });
  });
  afterAll(() => app.close());

  const good = (claims = {}) => hsToken({ iss: 'https://idp.test', aud: 'switchboard', ...claims });

  it('accepts a valid token and returns a ticket, its lifetime and the WebSocket URL', async () => {
    const { status, body } = await ticketStatus(app, await good());
    expect(status).toBe(201);
    expect(body).toEqual({
      ticket: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      expiresIn: 30,
      url: expect.stringMatching(
        new RegExp(`^ws://127\\.0\\.0\\.1:${app.port}/ws\\?ticket=[A-Za-z0-9_-]{43}$`),
      ),
    });
  });

  it.each([
    ['no Authorization header', () => Promise.resolve('')],
    [
      'alg: none',
      () => Promise.resolve(noneToken({ iss: 'https://idp.test', aud: 'switchboard' })),
    ],
    ['a token without exp', async () => good({ exp: undefined })],
    ['an expired token', async () => good({ exp: seconds() - 60 })],
    ['a not-yet-valid token (nbf)', async () => good({ nbf: seconds() + 60 })],
    ['a tampered token', async () => tamper(await good())],
    [
      'another secret',
      async () => hsToken({ iss: 'https://idp.test', aud: 'switchboard' }, 'x'.repeat(40)),
    ],
    ['a wrong issuer', async () => good({ iss: 'https://evil.test' })],
    ['a wrong audience', async () => good({ aud: 'other' })],
    ['no sub', async () => good({ sub: undefined })],
    ['an exp more than a year ahead (1e300)', async () => good({ exp: 1e300 })],
    ['an exp 367 days ahead', async () => good({ exp: seconds() + 367 * 86_400 })],
    [
      'a rooms claim of 65 patterns',
      async () => good({ rooms: Array.from({ length: 65 }, (_, i) => `team-${i}:*`) }),
    ],
    ['a rooms pattern of 129 characters', async () => good({ rooms: ['x'.repeat(129)] })],
    [
      'an RS256 token',
      async () =>
        signWith(rsaKeys().privateKey, 'RS256', { iss: 'https://idp.test', aud: 'switchboard' }),
    ],
  ])('refuses %s with 401', async (_, makeToken) => {
    const token = await makeToken();
    const response = await fetch(`${app.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
  });

  it('refuses a ticket to a page outside ALLOWED_ORIGINS with 403 naming its origin', async () => {
    const token = await good();
    const ask = (origin: string) =>
      fetch(`${app.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, origin },
      });
    const refused = await ask('https://evil.test');
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { message: string }).message).toMatch(
      /origin https:\/\/evil\.test is not in ALLOWED_ORIGINS/,
    );
    expect((await ask(TEST_ORIGIN)).status).toBe(201);
  });

  it('honours JWT_CLOCK_TOLERANCE_S for exp', async () => {
    expect((await ticketStatus(app, await good({ exp: seconds() - 2 }))).status).toBe(201);
  });
});

describe('access tokens with JWT_PUBLIC_KEY', () => {
  it.each([
    ['RS256', rsaKeys],
    ['ES256', ecKeys],
  ] as const)(
    'accepts %s signed by the matching private key and refuses HS256',
    async (alg, keys) => {
      const { privateKey, publicPem } = keys();
      const app = await startApp({ JWT_SECRET: '', JWT_PUBLIC_KEY: publicPem, DEV_AUTH: 'false' });
      try {
        expect((await ticketStatus(app, await signWith(privateKey, alg))).status).toBe(201);
        // The classic confusion attack: HS256 "signed" with the public key as the secret.
        expect((await ticketStatus(app, await hsToken({}, publicPem))).status).toBe(401);
        expect((await ticketStatus(app, noneToken())).status).toBe(401);
        const other = keys();
        expect((await ticketStatus(app, await signWith(other.privateKey, alg))).status).toBe(401);
        // Dev tokens need a shared secret: the route does not exist here.
        const devToken = await fetch(`${app.http}/auth/dev-token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'alice' }),
        });
        expect(devToken.status).toBe(404);
      } finally {
        await app.close();
      }
    },
  );
});

describe('access tokens with JWT_JWKS_URL', () => {
  let jwks: Server;
  let keys: object[] = [];
  let fetches = 0;
  beforeAll(async () => {
    jwks = createServer((_, res) => {
      fetches += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise((resolve) => jwks.close(resolve)));

  it('caches the key set and refetches it when a token names an unknown kid', async () => {
    const first = ecKeys();
    const second = ecKeys();
    keys = [{ ...(await exportJWK(first.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }];
    const { port } = jwks.address() as AddressInfo;
    const app = await startApp(
      { JWT_SECRET: '', JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks`, DEV_AUTH: 'false' },
      { timings: { jwksCooldownMs: 200 } },
    );
    try {
      expect(
        (await ticketStatus(app, await signWith(first.privateKey, 'ES256', {}, 'k1'))).status,
      ).toBe(201);
      expect(
        (await ticketStatus(app, await signWith(first.privateKey, 'ES256', {}, 'k1'))).status,
      ).toBe(201);
      expect(fetches).toBe(1);
      // The identity provider rotates its key; after the refetch cooldown (5 s, 200 ms here) a
      // token with the new kid makes the server fetch the key set again.
      keys = [
        ...keys,
        { ...(await exportJWK(second.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' },
      ];
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(
        (await ticketStatus(app, await signWith(second.privateKey, 'ES256', {}, 'k2'))).status,
      ).toBe(201);
      expect(fetches).toBe(2);
      expect(
        (await ticketStatus(app, await signWith(ecKeys().privateKey, 'ES256', {}, 'k3'))).status,
      ).toBe(401);
    } finally {
      await app.close();
    }
  }, 20_000);
});

describe('POST /auth/dev-token', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(() => app.close());

  const post = (body: unknown) =>
    fetch(`${app.http}/auth/dev-token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('answers 429 with Retry-After past 60 a minute from one address', async () => {
    const limited = await startApp();
    try {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 61; i++) {
        last = await fetch(`${limited.http}/auth/dev-token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: `many${i}` }),
        });
        statuses.push(last.status);
      }
      expect(statuses.filter((status) => status === 200)).toHaveLength(60);
      expect(statuses[60]).toBe(429);
      expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await last?.json()).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
    } finally {
      await limited.close();
    }
  });

  it('issues a Bearer token with the requested lifetime', async () => {
    const response = await post({ userId: 'alice', name: 'Alice', ttl: 120 });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      accessToken: expect.any(String),
      tokenType: 'Bearer',
      expiresIn: 120,
    });
  });

  it.each([
    [{}, 'userId'],
    [{ userId: '' }, 'userId'],
    [{ userId: 'a b' }, 'userId'],
    [{ userId: 'alice', ttl: 86_401 }, 'ttl'],
    [{ userId: 'alice', ttl: 'long' }, 'ttl'],
    [{ userId: 'alice', admin: true }, 'admin'],
  ])('answers 400 naming the field for %j', async (body, field) => {
    const response = await post(body);
    expect(response.status).toBe(400);
    const { message } = (await response.json()) as { message: string[] };
    expect(message.join(' ')).toContain(field);
  });

  it('is 404 when DEV_AUTH=false', async () => {
    const off = await startApp({ DEV_AUTH: 'false' });
    try {
      const response = await fetch(`${off.http}/auth/dev-token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'alice' }),
      });
      expect(response.status).toBe(404);
    } finally {
      await off.close();
    }
  });
});

describe('POST /auth/ws-ticket throttling', () => {
  it('answers 429 with Retry-After past TICKETS_PER_MINUTE, per user', async () => {
    const app = await startApp({ TICKETS_PER_MINUTE: '2' });
    try {
      const alice = await app.devToken('alice');
      expect((await ticketStatus(app, alice)).status).toBe(201);
      expect((await ticketStatus(app, alice)).status).toBe(201);
      const third = await fetch(`${app.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice}` },
      });
      expect(third.status).toBe(429);
      const retryAfter = Number(third.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await third.json()).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
      // The refused request's token is not kept among the verified ones.
      const verifier = app.app.get(TokenVerifier);
      const kept = verifier.remembered.tokens;
      const carol = await app.devToken('carol');
      for (let i = 0; i < 2; i++) {
        expect((await ticketStatus(app, carol)).status).toBe(201);
      }
      expect(verifier.remembered.tokens).toBe(kept + 1);
      expect((await ticketStatus(app, carol)).status).toBe(429);
      expect(verifier.remembered.tokens).toBe(kept);
      expect((await ticketStatus(app, await app.devToken('bob'))).status).toBe(201);
    } finally {
      await app.close();
    }
  });
});
