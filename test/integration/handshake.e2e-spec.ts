import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { CloseCode } from '@switchboard/protocol';
import { Hub } from '../../libs/nest/src/core/hub';
import { SkewedClock, startApp, TEST_ORIGIN, type TestApp } from '../support/app';
import { hsToken, seconds } from '../support/jwt';
import { delta, scrape } from '../support/prometheus';
import { connected, TestClient, within } from '../support/ws-client';

/** Sends an upgrade request with `overrides` over plain TCP; resolves with the response head. */
async function rawUpgrade(
  port: number,
  path: string,
  overrides: Record<string, string>,
): Promise<string> {
  const headers: Record<string, string> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...overrides,
  };
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(
    `GET ${path} HTTP/1.1\r\n${Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}`)
      .join('\r\n')}\r\n\r\n`,
  );
  await within(ended, 'the refusal');
  return received;
}

/** docs/protocol.md: every row of the handshake table, in order, as a plain `ws` client sees it. */
describe('WebSocket handshake', () => {
  let app: TestApp;
  const clients: TestClient[] = [];
  const open = (url: string, options?: ConstructorParameters<typeof TestClient>[1]): TestClient => {
    const client = new TestClient(url, options);
    clients.push(client);
    return client;
  };
  const closeOf = (client: TestClient) => within(client.closed, 'close');
  const refusalOf = (client: TestClient) => within(client.refused, 'HTTP refusal');
  let userSeq = 0;
  const newUser = () => `user${++userSeq}`;

  beforeAll(async () => {
    app = await startApp({ MAX_CONNECTIONS_PER_USER: '1', CONNECT_ATTEMPTS_PER_MINUTE: '3' });
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => app.close());

  async function ticketUrl(userId = newUser()): Promise<string> {
    return (await app.ticket(await app.devToken(userId))).url;
  }

  it('1: another path gets 404 and no upgrade', async () => {
    const client = open(`ws://127.0.0.1:${app.port}/other?ticket=x`);
    expect((await refusalOf(client)).status).toBe(404);
  });

  it.each([
    ['a malformed Sec-WebSocket-Key', { 'Sec-WebSocket-Key': 'abc' }, 400],
    ['Sec-WebSocket-Version 12', { 'Sec-WebSocket-Version': '12' }, 400],
    ['no Upgrade: websocket', { Upgrade: 'h2c' }, 400],
    ['a bad subprotocol list', { 'Sec-WebSocket-Protocol': 'a, a' }, 400],
  ])(
    'a malformed upgrade (%s) is refused and keeps the ticket unspent',
    async (_, headers, status) => {
      const before = await scrape(app.http);
      const url = new URL(await ticketUrl());
      const response = await rawUpgrade(app.port, `${url.pathname}${url.search}`, headers);
      expect(response).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      const afterRefusal = await scrape(app.http);
      expect(
        delta(
          before,
          afterRefusal,
          'ws_connections_total{outcome="accepted",transport="websocket"}',
        ),
      ).toBe(0);
      expect(delta(before, afterRefusal, 'ws_tickets_redeemed_total{result="ok"}')).toBe(0);
      clients.push(await connected(url.toString()));
      const after = await scrape(app.http);
      expect(
        delta(before, after, 'ws_connections_total{outcome="accepted",transport="websocket"}'),
      ).toBe(1);
    },
  );

  it('2: a foreign Origin gets 403 and no upgrade', async () => {
    const client = open(await ticketUrl(), { origin: 'https://evil.test' });
    expect((await refusalOf(client)).status).toBe(403);
  });

  it('2: a version-8 client names its origin in Sec-WebSocket-Origin: a foreign one gets 403', async () => {
    // ws sends `Sec-WebSocket-Origin` instead of `Origin` for protocol version 8, as hybi-08 did.
    const foreign = open(await ticketUrl(), { protocolVersion: 8, origin: 'https://evil.test' });
    expect((await refusalOf(foreign)).status).toBe(403);
    clients.push(await connected(await ticketUrl(), { protocolVersion: 8, origin: TEST_ORIGIN }));
  });

  it('2: an allowed Origin is accepted, and so is a request without Origin', async () => {
    const browser = await connected(await ticketUrl(), { origin: TEST_ORIGIN });
    const cli = await connected(await ticketUrl());
    clients.push(browser, cli);
    expect(browser.socket.readyState).toBe(browser.socket.OPEN);
    expect(cli.socket.readyState).toBe(cli.socket.OPEN);
  });

  it('3: a draining instance answers 503 with Retry-After', async () => {
    const draining = await startApp();
    try {
      const token = await draining.devToken('d');
      const url = (await draining.ticket(token)).url;
      draining.app.get(Hub).startDraining();
      const refusal = await refusalOf(open(url));
      expect(refusal.status).toBe(503);
      expect(Number(refusal.headers['retry-after'])).toBeGreaterThan(0);
      // The ticket route sends its clients elsewhere too, with a short time to come back.
      const ticket = await fetch(`${draining.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(ticket.status).toBe(503);
      expect(await ticket.json()).toMatchObject({ message: /shutting down/ });
    } finally {
      clients.splice(0).forEach((client) => client.close());
      await draining.close();
    }
  });

  it('5: no ticket closes with 4001 after the upgrade', async () => {
    const closed = await closeOf(open(app.ws));
    expect(closed).toEqual({ code: CloseCode.Unauthorized, reason: 'missing ticket' });
  });

  it('5: an unknown ticket closes with 4001', async () => {
    const closed = await closeOf(open(`${app.ws}?ticket=${'A'.repeat(43)}`));
    expect(closed.code).toBe(CloseCode.Unauthorized);
  });

  it('5: a ticket works once; a reused ticket closes with 4001', async () => {
    const url = await ticketUrl();
    const first = await connected(url);
    clients.push(first);
    expect((await closeOf(open(url))).code).toBe(CloseCode.Unauthorized);
    expect(first.socket.readyState).toBe(first.socket.OPEN);
  });

  it('5: concurrent redemptions of one ticket admit exactly one socket', async () => {
    const url = await ticketUrl();
    const racers = [open(url), open(url), open(url)];
    const outcomes = await Promise.all(
      racers.map((client) =>
        Promise.race([
          client.nextOfType('welcome').then(() => 'welcome'),
          client.closed.then(({ code }) => code),
        ]),
      ),
    );
    expect(outcomes.filter((outcome) => outcome === 'welcome')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === CloseCode.Unauthorized)).toHaveLength(2);
  });

  it('5: tokens in the query string are never accepted', async () => {
    const token = await app.devToken(newUser());
    for (const param of ['token', 'access_token', 'jwt']) {
      const closed = await closeOf(open(`${app.ws}?${param}=${token}`));
      expect(closed.code).toBe(CloseCode.Unauthorized);
    }
  });

  it('5: a Bearer JWT on the upgrade request works for non-browser clients', async () => {
    const token = await app.devToken(newUser());
    const client = await connected(app.ws, { headers: { authorization: `Bearer ${token}` } });
    clients.push(client);
    const invalid = open(app.ws, { headers: { authorization: `Bearer ${token}x` } });
    expect((await closeOf(invalid)).code).toBe(CloseCode.Unauthorized);
  });

  it('5: an expired Bearer JWT closes with 4002', async () => {
    const token = await hsToken({ sub: newUser(), exp: seconds() - 120 });
    const closed = await closeOf(open(app.ws, { headers: { authorization: `Bearer ${token}` } }));
    expect(closed.code).toBe(CloseCode.SessionExpired);
  });

  it('6: connect attempts past CONNECT_ATTEMPTS_PER_MINUTE close with 4029 and a retry hint', async () => {
    const userId = newUser();
    const token = await app.devToken(userId);
    for (let attempt = 0; attempt < 3; attempt++) {
      const client = await connected((await app.ticket(token)).url);
      client.close();
      await within(client.closed, 'close');
    }
    const closed = await closeOf(open((await app.ticket(token)).url));
    expect(closed.code).toBe(CloseCode.TooManyAttempts);
    expect(closed.reason).toMatch(/^retry after ([1-9]|[1-5]\d|60) s$/);
  });

  it('7: a session revoked (logout) before the ticket is used closes with 4003', async () => {
    const token = await app.devToken(newUser());
    const { url } = await app.ticket(token);
    const logout = await fetch(`${app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(logout.status).toBe(204);
    const closed = await closeOf(open(url));
    expect(closed.code).toBe(CloseCode.SessionRevoked);
    await expect(app.ticket(token)).rejects.toThrow(/401.*session revoked/);
  });

  it('8: a second connection of the same user replaces the first with 4009', async () => {
    const userId = newUser();
    const first = await connected(await ticketUrl(userId));
    clients.push(first);
    const second = await connected(await ticketUrl(userId));
    clients.push(second);
    expect(await closeOf(first)).toEqual({
      code: CloseCode.Replaced,
      reason: 'replaced by a newer connection',
    });
    expect(second.socket.readyState).toBe(second.socket.OPEN);
  });

  it('sends the welcome frame first', async () => {
    const token = await app.devToken('welcome-user', { name: 'Wendy' });
    const client = open((await app.ticket(token)).url);
    const welcome = await client.next();
    expect(welcome).toEqual({
      type: 'welcome',
      ts: expect.any(Number),
      data: {
        connectionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        user: { id: 'welcome-user', name: 'Wendy' },
        heartbeatMs: 30000,
        sessionExpiresAt: expect.any(Number),
        limits: { maxPayload: 10240, messagesPerWindow: 20, windowMs: 10000 },
        position: { epoch: expect.any(String), offset: 0 }, // the user's own stream
      },
    });
    const { sessionExpiresAt } = welcome.data as { sessionExpiresAt: number };
    expect(Math.abs(sessionExpiresAt - (Date.now() + 3600_000))).toBeLessThan(5000);
  });
});

describe('WebSocket handshake limits (rows 3, 4, 5, 7)', () => {
  const clients: TestClient[] = [];
  afterEach(() => clients.splice(0).forEach((client) => client.close()));

  async function withApp(
    env: Record<string, string>,
    body: (app: TestApp, clock: SkewedClock) => Promise<void>,
  ): Promise<void> {
    const clock = new SkewedClock();
    const app = await startApp(env, { clock });
    try {
      await body(app, clock);
    } finally {
      clients.splice(0).forEach((client) => client.close());
      await app.close();
    }
  }
  const url = async (app: TestApp, userId: string): Promise<string> =>
    (await app.ticket(await app.devToken(userId))).url;

  it('3: past MAX_CONNECTIONS the instance answers 503 with Retry-After', () =>
    withApp({ MAX_CONNECTIONS: '2' }, async (app) => {
      clients.push(await connected(await url(app, 'a')), await connected(await url(app, 'b')));
      const third = new TestClient(await url(app, 'c'));
      clients.push(third);
      const refusal = await within(third.refused, 'refusal');
      expect(refusal.status).toBe(503);
      expect(refusal.headers['retry-after']).toBeDefined();
    }));

  it('4: past MAX_CONNECTIONS_PER_IP the instance answers 429', () =>
    withApp({ MAX_CONNECTIONS_PER_IP: '2' }, async (app) => {
      clients.push(await connected(await url(app, 'a')), await connected(await url(app, 'b')));
      const third = new TestClient(await url(app, 'c'));
      clients.push(third);
      expect((await within(third.refused, 'refusal')).status).toBe(429);
      // A place frees up when a socket closes.
      clients[0].close();
      await within(clients[0].closed, 'close');
      await new Promise((resolve) => setImmediate(resolve));
      clients.push(await connected(await url(app, 'd')));
    }));

  it('5: an expired ticket closes with 4001', () =>
    withApp({ TICKET_TTL_S: '1' }, async (app, clock) => {
      const ticketUrl = await url(app, 'late');
      clock.advance(1_001);
      const client = new TestClient(ticketUrl);
      clients.push(client);
      expect((await within(client.closed, 'close')).code).toBe(CloseCode.Unauthorized);
    }));

  it('7: a ticket redeemed after its token expired closes with 4002', () =>
    withApp({ JWT_CLOCK_TOLERANCE_S: '0' }, async (app, clock) => {
      const exp = Math.floor(clock.now() / 1000) + 10;
      const { url: ticketUrl } = await app.ticket(await hsToken({ sub: 'short', exp }));
      clock.advance(10_000); // past exp, within the ticket's 30 s
      const client = new TestClient(ticketUrl);
      clients.push(client);
      expect((await within(client.closed, 'close')).code).toBe(CloseCode.SessionExpired);
    }));
});
