import WebSocket from 'ws';
import { type ConnectionState, SwitchboardClient } from '@switchboard/client';
import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { hsToken, seconds } from '../support/jwt';
import { TcpProxy } from '../support/tcp-proxy';

/** The SDK against a real server: every close code of docs/protocol.md drives the documented reaction. */
describe('client SDK', () => {
  let app: TestApp;
  const clients: SwitchboardClient[] = [];
  let seq = 0;

  beforeAll(async () => {
    app = await startApp({
      MAX_CONNECTIONS_PER_USER: '1',
      CONNECT_ATTEMPTS_PER_MINUTE: '1000',
      TICKETS_PER_MINUTE: '1000',
      JWT_CLOCK_TOLERANCE_S: '0',
    });
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => app.close());

  interface Harness {
    client: SwitchboardClient;
    userId: string;
    states: ConnectionState[];
    tokenRequests: Array<{ refresh: boolean }>;
    ticketRequests: number;
    welcomes: number;
  }

  function harness(
    options: {
      userId?: string;
      token?: (refresh: boolean) => Promise<string>;
      ticketUrl?: (url: string, n: number) => string;
      pingIntervalMs?: number;
      pongTimeoutMs?: number;
      /** The server to talk to. @default the suite's app */
      server?: TestApp;
    } = {},
  ): Harness {
    const server = options.server ?? app;
    const userId = options.userId ?? `sdk${++seq}`;
    const h: Harness = {
      userId,
      states: [],
      tokenRequests: [],
      ticketRequests: 0,
      welcomes: 0,
      client: null as never,
    };
    h.client = new SwitchboardClient({
      url: server.http,
      WebSocket,
      getAccessToken: ({ refresh }) => {
        h.tokenRequests.push({ refresh });
        return options.token ? options.token(refresh) : server.devToken(userId);
      },
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        h.ticketRequests += 1;
        if (response.status !== 201 || !options.ticketUrl) {
          return response;
        }
        const body = (await response.json()) as { url: string };
        return new Response(
          JSON.stringify({ ...body, url: options.ticketUrl(body.url, h.ticketRequests) }),
          { status: 201 },
        );
      },
      backoff: { initialMs: 100, maxMs: 400 },
      pingIntervalMs: options.pingIntervalMs,
      pongTimeoutMs: options.pongTimeoutMs,
    });
    h.client.on('state', (state) => h.states.push(state));
    h.client.on('welcome', () => (h.welcomes += 1));
    clients.push(h.client);
    return h;
  }
  const open = async (h: Harness, welcomes = 1) => {
    h.client.connect();
    await waitUntil(() => h.welcomes >= welcomes && h.client.state === 'open', `${h.userId} open`);
  };
  const kick = (h: Harness, code: number, reason?: string) =>
    app.app.get(BroadcastService).disconnectUser(h.userId, code, reason);

  it('connects with a ticket and exposes the welcome', async () => {
    const h = harness();
    await open(h);
    expect(h.states).toEqual(['connecting', 'open']);
    expect(h.client.welcome?.user.id).toBe(h.userId);
  });

  it('holds a request made while connecting until it is open: connect(), then await join()', async () => {
    const h = harness();
    h.client.connect();
    expect(h.client.state).toBe('connecting');
    const joined = await h.client.join('early-room');
    expect(joined.room).toBe('early-room');
    expect(h.client.joinedRooms).toEqual(['early-room']);
  });

  it('refuses a request at once before connect() and after close()', async () => {
    const h = harness();
    await expect(h.client.join('lobby')).rejects.toThrow(/not connected \(state: idle\)/);
    await open(h);
    h.client.close();
    await expect(h.client.join('lobby')).rejects.toThrow(/not connected \(state: closed\)/);
  });

  it('stops on 1000 from the server', async () => {
    const h = harness();
    await open(h);
    await kick(h, CloseCode.Normal, 'done');
    await waitUntil(() => h.client.state === 'closed', 'closed');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(h.ticketRequests).toBe(1);
  });

  it.each([
    CloseCode.GoingAway,
    CloseCode.PolicyViolation,
    CloseCode.InternalError,
    CloseCode.SlowConsumer,
  ])(
    'reconnects with backoff after %i, with a new ticket, and joins its rooms again',
    async (code) => {
      const h = harness();
      await open(h);
      await h.client.join('sdk-room');
      await kick(h, code);
      await waitUntil(() => h.welcomes === 2 && h.client.state === 'open', 'reconnected');
      expect(h.states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
      expect(h.ticketRequests).toBe(2);
      await waitUntil(
        async () => (await h.client.presence('sdk-room')).members.some((m) => m.id === h.userId),
        'rejoined',
      );
    },
  );

  it('reconnects after a 1009 (a message that was too big)', async () => {
    const h = harness();
    await open(h);
    h.client.send('room.message', { room: 'x', text: 'y'.repeat(20_000) });
    await waitUntil(() => h.welcomes === 2 && h.client.state === 'open', 'reconnected after 1009');
  });

  it('fetches a new ticket after 4001, and gives up after three in a row', async () => {
    const once = harness({
      ticketUrl: (url, n) => (n === 1 ? url.replace(/ticket=.*/, 'ticket=forged') : url),
    });
    await open(once);
    expect(once.ticketRequests).toBe(2);

    const never = harness({ ticketUrl: (url) => url.replace(/ticket=.*/, 'ticket=forged') });
    const stopped = new Promise((resolve) => never.client.on('stopped', resolve));
    never.client.connect();
    expect(await stopped).toMatchObject({ state: 'closed', code: CloseCode.Unauthorized });
    expect(never.ticketRequests).toBe(3);
  });

  it('asks for a fresh access token after 4002, then reconnects', async () => {
    const userId = `sdk${++seq}`;
    const h = harness({
      userId,
      token: (refresh) => hsToken({ sub: userId, exp: seconds() + (refresh ? 3600 : 2) }),
    });
    await open(h);
    await waitUntil(
      () => h.welcomes === 2 && h.client.state === 'open',
      'reconnected after expiry',
      6000,
    );
    expect(h.tokenRequests).toEqual([{ refresh: false }, { refresh: true }]);
  });

  it('stops and reports signed-out on 4003 (logout)', async () => {
    const userId = `sdk${++seq}`;
    const token = await app.devToken(userId);
    const h = harness({ userId, token: () => Promise.resolve(token) });
    await open(h);
    await fetch(`${app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    await waitUntil(() => h.client.state === 'signed-out', 'signed-out');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(h.ticketRequests).toBe(1);
  });

  it('stops and reports replaced on 4009, and takes over when asked', async () => {
    const first = harness({ userId: 'twin' });
    await open(first);
    const second = harness({ userId: 'twin' });
    await open(second);
    await waitUntil(() => first.client.state === 'replaced', 'replaced');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(first.ticketRequests).toBe(1);
    first.client.takeOver();
    await waitUntil(
      () => first.client.state === 'open' && second.client.state === 'replaced',
      'take over',
    );
  });

  it('waits the server’s retry hint on 4029, and says so in `reconnecting`', async () => {
    const h = harness();
    const waits: Array<{ attempt: number; delayMs: number; reason: string }> = [];
    h.client.on('reconnecting', (info) => waits.push(info));
    await open(h);
    const kicked = Date.now();
    await kick(h, CloseCode.TooManyAttempts, 'retry after 1 s');
    await waitUntil(() => h.welcomes === 2, 'reconnected after the wait', 4000);
    expect(Date.now() - kicked).toBeGreaterThanOrEqual(950);
    expect(waits).toEqual([
      { attempt: 1, delayMs: expect.any(Number) as number, reason: '4029 retry after 1 s' },
    ]);
    expect(waits[0].delayMs).toBeGreaterThanOrEqual(1000);
    expect(waits[0].delayMs).toBeLessThanOrEqual(1100);
  });

  it('waits the `reconnect in N ms` of a 1001, then comes back with a new ticket', async () => {
    const h = harness();
    const waits: Array<{ attempt: number; delayMs: number; reason: string }> = [];
    h.client.on('reconnecting', (info) => waits.push(info));
    await open(h);
    const kicked = Date.now();
    await kick(h, CloseCode.GoingAway, 'reconnect in 800 ms');
    await waitUntil(() => h.welcomes === 2 && h.client.state === 'open', 'back after 800 ms', 4000);
    expect(Date.now() - kicked).toBeGreaterThanOrEqual(750);
    expect(waits.map((w) => w.reason)).toEqual(['1001 reconnect in 800 ms']);
    expect(h.ticketRequests).toBe(2);
  });

  it('retryNow() cuts a long server hint short', async () => {
    const h = harness();
    await open(h);
    const waiting = new Promise((resolve) => h.client.on('reconnecting', resolve));
    await kick(h, CloseCode.GoingAway, 'reconnect in 60000 ms');
    await waiting;
    expect(h.client.retryNow()).toBe(true);
    await waitUntil(() => h.welcomes === 2 && h.client.state === 'open', 'back at once', 2000);
  });

  it('fails a join waiting for the connection at once with the 4029 that refused it', async () => {
    const strict = await startApp({ CONNECT_ATTEMPTS_PER_MINUTE: '1' });
    try {
      const first = harness({ server: strict });
      await open(first);
      first.client.close();
      const second = harness({ server: strict, userId: first.userId });
      second.client.connect();
      const asked = Date.now();
      await expect(second.client.join('lobby')).rejects.toThrow(
        /^connection refused: too many connection attempts \(4029, retry after \d+ s\)$/,
      );
      // Not after the request's timeout (10 s): the retry hint (a minute) was beyond it.
      expect(Date.now() - asked).toBeLessThan(5000);
      expect(second.client.state).toBe('reconnecting');
    } finally {
      await strict.close();
    }
  });

  it('notices a dead link with application pings and reconnects', async () => {
    const proxy = await TcpProxy.start(app.port);
    try {
      const h = harness({
        ticketUrl: (url, n) => (n === 1 ? url.replace(`:${app.port}/`, `:${proxy.port}/`) : url),
        pingIntervalMs: 200,
        pongTimeoutMs: 300,
      });
      await open(h);
      proxy.blackhole();
      await waitUntil(
        () => h.welcomes === 2 && h.client.state === 'open',
        'reconnected around the dead link',
        5000,
      );
      expect(h.states).toContain('reconnecting');
    } finally {
      await proxy.close();
    }
  });

  it('resolves requests by id and rejects refused ones with the error code', async () => {
    const h = harness();
    await open(h);
    expect(await h.client.join('ok-room')).toMatchObject({ room: 'ok-room' });
    await expect(h.client.join('user:nope')).rejects.toMatchObject({
      name: 'SwitchboardError',
      code: 'forbidden',
    });
    const received = new Promise((resolve) => h.client.onEvent('room.message', resolve));
    h.client.message('ok-room', 'hi');
    expect(await received).toMatchObject({ room: 'ok-room', text: 'hi', from: { id: h.userId } });
  });
});
