import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { CloseCode, type ErrorData, type TicketResponse } from '@switchboard/protocol';
import { ConfigError, type HostSession, SwitchboardModule } from '@switchboard/nest';
import { startApp, TEST_ORIGIN, TEST_SECRET, type TestApp, twoInstances } from '../support/app';
import { hsToken, seconds, tamper } from '../support/jwt';
import { scrape } from '../support/prometheus';
import { suiteRedis } from '../support/redis';
import { connected, TestClient, within } from '../support/ws-client';

const ANONYMOUS_COOKIE = 'switchboard_anon';
const CROSS_SITE = [
  ['no Origin', {}],
  ['a foreign Origin', { origin: 'https://evil.example' }],
  ['Origin: null', { origin: 'null' }],
] as const;

/** `POST path` with the cookie header, from `origin` (none when undefined). */
function post(
  app: { http: string },
  path: string,
  { cookie, origin, body }: { cookie?: string; origin?: string; body?: unknown },
): Promise<Response> {
  return fetch(`${app.http}${path}`, {
    method: 'POST',
    headers: {
      ...(cookie !== undefined && { cookie }),
      ...(origin !== undefined && { origin }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A guest identity's cookie (`name=value`) and answer. */
async function guest(app: { http: string }, name: string, cookie?: string) {
  const response = await post(app, '/auth/anonymous', {
    origin: TEST_ORIGIN,
    body: { name },
    cookie,
  });
  expect(response.status).toBe(200);
  const setCookie = response.headers.get('set-cookie') ?? '';
  return {
    body: (await response.json()) as { userId: string; name: string; expiresIn: number },
    setCookie,
    cookie: setCookie.split(';')[0],
  };
}

/** A socket opened with only the browser's cookie (no ticket, no token). */
function cookieSocket(app: TestApp, cookie: string, origin?: string): TestClient {
  return new TestClient(app.ws, { headers: { cookie }, ...(origin !== undefined && { origin }) });
}

async function welcomed(client: TestClient): Promise<TestClient> {
  await within(client.opened, 'the cookie socket to open');
  client.welcome = (await client.nextOfType('welcome')).data as TestClient['welcome'];
  return client;
}

describe('AUTH_COOKIE: the access token in a cookie', () => {
  let app: TestApp;
  const clients: TestClient[] = [];
  const open = (client: TestClient) => (clients.push(client), client);

  beforeAll(async () => {
    app = await startApp({ AUTH_COOKIE: 'session' });
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => app.close());

  it('gives a ticket to a page of ALLOWED_ORIGINS, and lets it read the answer with credentials', async () => {
    const token = await app.devToken('alice');
    const response = await post(app, '/auth/ws-ticket', {
      cookie: `other=1; session=${token}`,
      origin: TEST_ORIGIN,
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('access-control-allow-origin')).toBe(TEST_ORIGIN);
    expect(response.headers.get('access-control-allow-credentials')).toBe('true');
    const { url } = (await response.json()) as TicketResponse;
    const alice = open(await connected(url));
    expect(alice.welcome.user).toEqual({ id: 'alice', name: 'alice' });
  });

  it('opens a socket on the cookie alone, from an allowed origin', async () => {
    const token = await app.devToken('bob', { name: 'Bob' });
    const bob = open(await welcomed(cookieSocket(app, `session=${token}`, TEST_ORIGIN)));
    expect(bob.welcome.user).toEqual({ id: 'bob', name: 'Bob' });
  });

  it.each(CROSS_SITE)('refuses a cookie ticket request with %s (403)', async (_, headers) => {
    const token = await app.devToken('carol');
    const response = await post(app, '/auth/ws-ticket', {
      cookie: `session=${token}`,
      ...headers,
    });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { message: string }).message).toMatch(/ALLOWED_ORIGINS/);
  });

  it.each(CROSS_SITE)(
    'refuses a cookie upgrade with %s (403, nothing upgraded)',
    async (_, headers) => {
      const token = await app.devToken('dave');
      const client = open(
        new TestClient(app.ws, {
          headers: { cookie: `session=${token}` },
          ...('origin' in headers && { origin: headers.origin }),
        }),
      );
      const refused = await within(client.refused, 'the refusal');
      expect(refused.status).toBe(403);
    },
  );

  it('still takes a Bearer token without an Origin, whatever cookie comes with it', async () => {
    const token = await app.devToken('erin');
    const response = await fetch(`${app.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, cookie: 'session=garbage' },
    });
    expect(response.status).toBe(201);
  });

  it('refuses a tampered cookie token (401; the socket closes 4001)', async () => {
    const bad = tamper(await app.devToken('frank'));
    const response = await post(app, '/auth/ws-ticket', {
      cookie: `session=${bad}`,
      origin: TEST_ORIGIN,
    });
    expect(response.status).toBe(401);
    const client = open(cookieSocket(app, `session=${bad}`, TEST_ORIGIN));
    expect((await within(client.closed, 'the close')).code).toBe(CloseCode.Unauthorized);
  });

  it('closes 4002 for an expired cookie token, as for a Bearer one', async () => {
    const expired = await hsToken({ sub: 'gina', exp: seconds() - 120 });
    const client = open(cookieSocket(app, `session=${expired}`, TEST_ORIGIN));
    expect((await within(client.closed, 'the close')).code).toBe(CloseCode.SessionExpired);
  });

  it('logs out by cookie: the socket closes 4003 and the cookie opens nothing more', async () => {
    const token = await app.devToken('hank');
    const hank = open(await welcomed(cookieSocket(app, `session=${token}`, TEST_ORIGIN)));
    const logout = await post(app, '/auth/logout', {
      cookie: `session=${token}`,
      origin: TEST_ORIGIN,
    });
    expect(logout.status).toBe(204);
    expect(logout.headers.get('set-cookie')).toBeNull(); // the host's cookie stays the host's
    expect((await within(hank.closed, 'the close')).code).toBe(CloseCode.SessionRevoked);
    const again = open(cookieSocket(app, `session=${token}`, TEST_ORIGIN));
    expect((await within(again.closed, 'the close')).code).toBe(CloseCode.SessionRevoked);
    const ticket = await post(app, '/auth/ws-ticket', {
      cookie: `session=${token}`,
      origin: TEST_ORIGIN,
    });
    expect(ticket.status).toBe(401);
  });

  it('answers 401 to a request with no credentials at all, cookies or not', async () => {
    const response = await post(app, '/auth/ws-ticket', {
      cookie: 'theme=dark',
      origin: TEST_ORIGIN,
    });
    expect(response.status).toBe(401);
    const none = open(cookieSocket(app, 'theme=dark'));
    expect((await within(none.closed, 'the close')).code).toBe(CloseCode.Unauthorized);
  });
});

describe('anonymous visitors (ANONYMOUS=true)', () => {
  let app: TestApp;
  const clients: TestClient[] = [];
  const open = (client: TestClient) => (clients.push(client), client);

  beforeAll(async () => {
    app = await startApp({
      ANONYMOUS: 'true',
      ANONYMOUS_ROOMS: 'lobby,support-*',
      ANONYMOUS_MESSAGES_PER_WINDOW: '6',
      ANONYMOUS_TTL_S: '3600',
      PRESENCE_BATCH_MS: '20',
      METRICS_PUBLIC: 'true',
    });
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => app.close());

  const guestSocket = async (name: string) => {
    const { cookie, body } = await guest(app, name);
    const client = open(await welcomed(cookieSocket(app, cookie, TEST_ORIGIN)));
    return { client, cookie, body };
  };

  it('issues an anon: identity in a signed, HttpOnly, SameSite=Lax cookie', async () => {
    const { body, setCookie } = await guest(app, '  Ada\u202E\n Lovelace ');
    expect(body).toEqual({
      userId: expect.stringMatching(/^anon:[\w-]{22}$/),
      name: 'Ada Lovelace',
      expiresIn: 3600,
    });
    expect(setCookie).toMatch(new RegExp(`^${ANONYMOUS_COOKIE}=[\\w-]+\\.[\\w-]+; `));
    expect(setCookie).toContain('Path=/');
    expect(setCookie).toContain('Max-Age=3600');
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Lax');
    expect(setCookie).not.toContain('Secure'); // plain http here
  });

  it.each(CROSS_SITE)('refuses to issue one with %s (403)', async (_, headers) => {
    const response = await post(app, '/auth/anonymous', { body: { name: 'Eve' }, ...headers });
    expect(response.status).toBe(403);
  });

  it.each([
    ['an empty name', { name: '' }],
    ['a name of 65 characters', { name: 'x'.repeat(65) }],
    ['no name', {}],
    ['a number', { name: 7 }],
  ])('refuses %s (400)', async (_, body) => {
    const response = await post(app, '/auth/anonymous', { body, origin: TEST_ORIGIN });
    expect(response.status).toBe(400);
  });

  it('keeps the identity of a visitor who asks again, with the new name', async () => {
    const first = await guest(app, 'Grace');
    const second = await guest(app, 'Grace H.', first.cookie);
    expect(second.body.userId).toBe(first.body.userId);
    expect(second.body.name).toBe('Grace H.');
  });

  it('trades the cookie for a ticket (renewing the cookie), and the socket knows the guest', async () => {
    const { cookie, body } = await guest(app, 'Linus');
    const response = await post(app, '/auth/ws-ticket', { cookie, origin: TEST_ORIGIN });
    expect(response.status).toBe(201);
    expect(response.headers.get('set-cookie')).toMatch(
      new RegExp(`^${ANONYMOUS_COOKIE}=.*Max-Age=3600`),
    );
    const { url } = (await response.json()) as TicketResponse;
    const linus = open(await connected(url));
    expect(linus.welcome.user).toEqual({ id: body.userId, name: 'Linus' });
    expect(linus.welcome.limits.messagesPerWindow).toBe(6);
  });

  it('refuses a tampered or forged cookie (401; the socket closes 4001)', async () => {
    const { cookie } = await guest(app, 'Mallory');
    const [payload, signature] = cookie.slice(ANONYMOUS_COOKIE.length + 1).split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { u: string };
    claims.u = 'anon:someone-else';
    const forged = `${ANONYMOUS_COOKIE}=${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    const flipped = `${cookie.slice(0, -2)}${cookie.endsWith('AA') ? 'AB' : 'AA'}`;
    for (const bad of [forged, flipped, `${ANONYMOUS_COOKIE}=not-a-cookie`]) {
      const response = await post(app, '/auth/ws-ticket', { cookie: bad, origin: TEST_ORIGIN });
      expect(response.status).toBe(401);
      const client = open(cookieSocket(app, bad, TEST_ORIGIN));
      expect((await within(client.closed, 'the close')).code).toBe(CloseCode.Unauthorized);
    }
  });

  it('joins only rooms of ANONYMOUS_ROOMS, and never a user: stream', async () => {
    const { client } = await guestSocket('Rooms');
    await expect(client.join('lobby')).resolves.toMatchObject({ room: 'lobby' });
    await expect(client.join('support-42')).resolves.toMatchObject({ room: 'support-42' });
    for (const room of ['staff', 'user:alice', 'lobby2']) {
      client.send({ type: 'room.join', id: room, data: { room } });
      const reply = await client.next((message) => message.id === room);
      expect(reply.type).toBe('error');
      expect((reply.data as ErrorData).code).toBe('forbidden');
    }
  });

  it('holds a guest to ANONYMOUS_MESSAGES_PER_WINDOW (6 here, against 20 for a user)', async () => {
    const { client } = await guestSocket('Chatty');
    await client.join('lobby'); // the first of the six
    for (let i = 1; i <= 6; i++) {
      client.send({
        type: 'room.message',
        id: `m${i}`,
        data: { room: 'lobby', text: `hello ${i}` },
      });
    }
    const limited = await client.next((message) => message.type === 'error');
    expect((limited.data as ErrorData).code).toBe('rate_limited');
    const delivered = await client.next(
      (message) =>
        message.type === 'room.message' && (message.data as { text: string }).text === 'hello 5',
    );
    expect(delivered).toBeDefined();
    expect(client.messages.filter((message) => message.type === 'error')).toHaveLength(0);
  });

  it('shows guests in presence beside signed-in members, and counts them apart in metrics', async () => {
    const member = open(await connected((await app.ticket(await app.devToken('olga'))).url));
    await member.join('lobby');
    const { client: visitor, body } = await guestSocket('Visitor');
    await visitor.join('lobby');
    const diff = await member.next(
      (message) =>
        message.type === 'presence.diff' &&
        (message.data as { joined: Array<{ id: string }> }).joined.some(
          (user) => user.id === body.userId,
        ),
    );
    expect((diff.data as { joined: unknown[] }).joined).toContainEqual({
      id: body.userId,
      name: 'Visitor',
    });
    const samples = await scrape(app.http);
    expect(samples.get('ws_connections_active{kind="anonymous",transport="websocket"}')).toBe(1);
    expect(samples.get('ws_connections_active{kind="user",transport="websocket"}')).toBe(1);
  });

  it('logs a guest out: its socket closes 4003, the cookie is cleared and refused from then on', async () => {
    const { client, cookie } = await guestSocket('Leaving');
    const logout = await post(app, '/auth/logout', { cookie, origin: TEST_ORIGIN });
    expect(logout.status).toBe(204);
    expect(logout.headers.get('set-cookie')).toMatch(
      new RegExp(`^${ANONYMOUS_COOKIE}=; .*Max-Age=0`),
    );
    expect((await within(client.closed, 'the close')).code).toBe(CloseCode.SessionRevoked);
    const ticket = await post(app, '/auth/ws-ticket', { cookie, origin: TEST_ORIGIN });
    expect(ticket.status).toBe(401);
    // Asking for an identity with the revoked cookie gives a new one.
    const next = await guest(app, 'Leaving', cookie);
    expect(`${ANONYMOUS_COOKIE}=${next.cookie.split('=')[1]}`).not.toBe(cookie);
  });

  it('never takes an anon: subject from an access token', async () => {
    const token = await hsToken({ sub: 'anon:impostor' });
    const response = await fetch(`${app.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(401);
  });
});

describe('anonymous visitors off', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp({});
  });
  afterAll(() => app.close());

  it('has no /auth/anonymous (404), and ignores the cookie elsewhere (401, not 403)', async () => {
    const response = await post(app, '/auth/anonymous', {
      body: { name: 'x' },
      origin: TEST_ORIGIN,
    });
    expect(response.status).toBe(404);
    const ticket = await post(app, '/auth/ws-ticket', { cookie: `${ANONYMOUS_COOKIE}=a.b` });
    expect(ticket.status).toBe(401);
    expect(ticket.headers.get('access-control-allow-credentials')).toBeNull();
  });
});

describe('anonymous visitors over two instances on one Redis', () => {
  let redis: { url: string; stop(): Promise<void> };
  let a: TestApp;
  let b: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await suiteRedis();
    [a, b] = await twoInstances({
      REDIS_URL: redis.url,
      ANONYMOUS: 'true',
      ANONYMOUS_ROOMS: 'lobby',
    });
  });
  afterAll(async () => {
    clients.forEach((client) => client.close());
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it('takes a cookie of A on B, and a logout on A closes the guest on B', async () => {
    const { cookie, body } = await guest(a, 'Roaming');
    const response = await post(b, '/auth/ws-ticket', { cookie, origin: TEST_ORIGIN });
    expect(response.status).toBe(201);
    const onB = await connected(((await response.json()) as TicketResponse).url);
    clients.push(onB);
    expect(onB.welcome.user.id).toBe(body.userId);
    expect((await post(a, '/auth/logout', { cookie, origin: TEST_ORIGIN })).status).toBe(204);
    expect((await within(onB.closed, 'the close on B')).code).toBe(CloseCode.SessionRevoked);
    expect((await post(b, '/auth/ws-ticket', { cookie, origin: TEST_ORIGIN })).status).toBe(401);
  });
});

describe("a host application's own sessions (authenticate)", () => {
  /** The host's session store: a `sid` cookie names a user. */
  const store = new Map<string, HostSession>([
    ['s-1', { userId: 'u-1', name: 'Host User', sessionId: 'host-s-1' }],
  ]);
  let app: INestApplication;
  let http: string;
  let ws: string;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    @Module({
      imports: [
        SwitchboardModule.forRoot({
          nodeEnv: 'test',
          jwtSecret: TEST_SECRET,
          allowedOrigins: [TEST_ORIGIN],
          logLevel: 'silent',
          authenticate: (request) => {
            const sid = /(?:^|;\s*)sid=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
            return Promise.resolve(sid === undefined ? null : (store.get(sid) ?? null));
          },
        }),
      ],
    })
    class HostModule {}
    app = await NestFactory.create(HostModule, new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    http = `http://127.0.0.1:${port}`;
    ws = `ws://127.0.0.1:${port}/ws`;
  });
  afterAll(async () => {
    clients.forEach((client) => client.close());
    await app?.close();
  });

  it('gives the host session a ticket and a socket, from an allowed origin only', async () => {
    const response = await post({ http }, '/auth/ws-ticket', {
      cookie: 'sid=s-1',
      origin: TEST_ORIGIN,
    });
    expect(response.status).toBe(201);
    const viaTicket = await connected(((await response.json()) as TicketResponse).url);
    clients.push(viaTicket);
    expect(viaTicket.welcome.user).toEqual({ id: 'u-1', name: 'Host User' });
    expect((await post({ http }, '/auth/ws-ticket', { cookie: 'sid=s-1' })).status).toBe(403);
    expect(
      (await post({ http }, '/auth/ws-ticket', { cookie: 'sid=nope', origin: TEST_ORIGIN })).status,
    ).toBe(401);
    const direct = new TestClient(ws, { headers: { cookie: 'sid=s-1' }, origin: TEST_ORIGIN });
    clients.push(direct);
    await welcomed(direct);
    expect(direct.welcome.user.id).toBe('u-1');
  });

  it('refuses to boot with both authenticate and authCookie', () => {
    expect(() =>
      SwitchboardModule.forRoot({
        jwtSecret: TEST_SECRET,
        authCookie: 'session',
        authenticate: () => null,
      }),
    ).toThrow(ConfigError);
  });
});
