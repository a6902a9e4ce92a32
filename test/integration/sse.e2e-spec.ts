import { CloseCode, ErrorCode, type ErrorData, type WelcomeData } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { Hub } from '../../libs/nest/src/core/hub';
import {
  holdNextRedemption,
  startApp,
  TEST_ORIGIN,
  type TestApp,
  twoInstances,
  waitUntil,
} from '../support/app';
import { REDIS_MODES, type RedisBackend, startBackend } from '../support/backends';
import { scrape } from '../support/prometheus';
import { SseTestClient, sseConnected } from '../support/sse-client';
import { connected, type TestClient, within } from '../support/ws-client';

/**
 * Server-Sent Events (docs/protocol.md, Server-Sent Events): the same connection model as a
 * WebSocket, its frames as events, the client's frames by POST, on one instance or forwarded to
 * the instance that holds the stream.
 */
describe('Server-Sent Events on one instance', () => {
  let app: TestApp;
  const clients: Array<SseTestClient | TestClient> = [];

  beforeAll(async () => {
    app = await startApp({
      WS_HEARTBEAT_MS: '300',
      MAX_CONNECTIONS_PER_USER: '1',
      WS_MESSAGES_PER_WINDOW: '5',
      WS_MESSAGE_WINDOW_MS: '60000',
    });
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await app.close();
  });

  async function open(userId: string, query = ''): Promise<SseTestClient> {
    const { ticket } = await app.ticket(await app.devToken(userId));
    const client = await sseConnected(app.http, `/sse?ticket=${ticket}${query}`);
    clients.push(client);
    return client;
  }

  it('opens with a ticket: a welcome with a send token, then pings as comments; frames go by POST', async () => {
    const client = await open('sse-ann');
    expect(client.welcome).toMatchObject({
      connectionId: expect.any(String) as string,
      user: { id: 'sse-ann', name: 'sse-ann' },
      heartbeatMs: 300,
      sendToken: expect.stringMatching(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]{32}$/),
    } satisfies Partial<Record<keyof WelcomeData, unknown>>);
    await waitUntil(() => Promise.resolve(client.comments >= 2), 'two keep-alive comments');
    client.send({ type: 'ping', id: 'p1' });
    expect(await client.nextOfType('pong')).toMatchObject({ id: 'p1' });
    expect(client.posts).toEqual([{ status: 202, body: '{"accepted":1}' }]);
    const samples = await scrape(app.http);
    expect(samples.get('ws_connections_active{kind="user",transport="sse"}')).toBe(1);
    expect(samples.get('ws_connections_total{outcome="accepted",transport="sse"}')).toBe(1);
    // A batch of frames in one POST, handled in order.
    const answer = await client.post(
      JSON.stringify([
        { type: 'room.join', id: 'j', data: { room: 'sse-room' } },
        { type: 'room.message', data: { room: 'sse-room', text: 'over SSE' } },
      ]),
    );
    expect(answer).toEqual({ status: 202, body: '{"accepted":2}' });
    expect(await client.nextOfType('room.joined')).toMatchObject({ id: 'j' });
    expect((await client.nextOfType('room.message')).data).toMatchObject({ text: 'over SSE' });
  });

  it('opens for a non-browser client with a Bearer token instead of a ticket', async () => {
    const token = await app.devToken('sse-bearer');
    const client = await sseConnected(app.http, '/sse', {
      headers: { authorization: `Bearer ${token}` },
    });
    clients.push(client);
    expect(client.welcome.user.id).toBe('sse-bearer');
    const forged = new SseTestClient(app.http, '/sse', {
      headers: { authorization: 'Bearer not-a-token' },
    });
    clients.push(forged);
    expect((await within(forged.closed, 'close')).code).toBe(CloseCode.Unauthorized);
  });

  it('talks with WebSocket clients in the same rooms', async () => {
    const overSse = await open('sse-bea');
    const token = await app.devToken('ws-cal');
    const overWs = await connected((await app.ticket(token)).url);
    clients.push(overWs);
    await overSse.join('mixed');
    await overWs.join('mixed');
    overWs.send({ type: 'room.message', data: { room: 'mixed', text: 'from ws' } });
    overSse.send({ type: 'room.message', data: { room: 'mixed', text: 'from sse' } });
    for (const client of [overSse, overWs] as const) {
      const texts = new Set<string>();
      while (texts.size < 2) {
        texts.add((await client.nextOfType<{ text: string }>('room.message')).data?.text ?? '');
      }
      expect([...texts].sort()).toEqual(['from sse', 'from ws']);
    }
    await app.app.get(BroadcastService).toUser('sse-bea', 'invoice.paid', { id: 7 });
    expect((await overSse.nextOfType('invoice.paid')).data).toEqual({ id: 7 });
  });

  it('refuses what a socket would be refused, before or after the stream opens', async () => {
    const noTicket = new SseTestClient(app.http, '/sse');
    clients.push(noTicket);
    expect(await within(noTicket.closed, 'close')).toEqual({
      code: CloseCode.Unauthorized,
      reason: 'missing ticket',
    });
    const { ticket } = await app.ticket(await app.devToken('sse-dan'));
    const foreign = new SseTestClient(app.http, `/sse?ticket=${ticket}`, {
      headers: { origin: 'https://evil.example' },
    });
    clients.push(foreign);
    expect((await within(foreign.refused, 'refusal')).status).toBe(403);
    // The refusal spent nothing: the ticket still opens a stream, once.
    const first = await sseConnected(app.http, `/sse?ticket=${ticket}`, {
      headers: { origin: TEST_ORIGIN },
    });
    clients.push(first);
    const reused = new SseTestClient(app.http, `/sse?ticket=${ticket}`);
    clients.push(reused);
    expect((await within(reused.closed, 'close')).code).toBe(CloseCode.Unauthorized);
    const token = new SseTestClient(app.http, `/sse?token=${await app.devToken('sse-dan')}`);
    clients.push(token);
    expect((await within(token.closed, 'close')).code).toBe(CloseCode.Unauthorized);
  });

  it('authorizes a POST by its connection and send token only, and says what is wrong with a body', async () => {
    const client = await open('sse-eve');
    const other = await open('sse-fay');
    const mine = { 'x-switchboard-connection': client.connectionId };
    const ping = '{"type":"ping"}';
    expect((await client.post(ping, mine)).status).toBe(401);
    expect(
      (
        await client.post(ping, {
          ...mine,
          authorization: `Bearer ${other.welcome.sendToken}`,
        })
      ).status,
    ).toBe(401);
    expect(
      (
        await client.post(ping, {
          'x-switchboard-connection': other.connectionId,
          authorization: `Bearer ${client.welcome.sendToken}`,
        })
      ).status,
    ).toBe(401);
    const bad = async (body: string) => {
      const answer = await client.post(body);
      return { status: answer.status, message: (JSON.parse(answer.body) as ErrorData).message };
    };
    expect(await bad('not json')).toEqual({
      status: 400,
      message: 'the body must be JSON: one frame or an array of frames',
    });
    expect((await bad('[1]')).status).toBe(400);
    expect((await bad('[]')).status).toBe(400);
    expect((await bad(JSON.stringify(Array(51).fill({ type: 'ping' })))).status).toBe(400);
    expect((await bad(`"${'x'.repeat(70_000)}"`)).status).toBe(413);
    // A frame that is no protocol message gets its error frame, as on a socket.
    expect((await client.post('{"type":"nope"}')).status).toBe(202);
    expect((await client.nextOfType<ErrorData>('error')).data?.code).toBe(ErrorCode.UnknownType);
  });

  it('closes with the codes of a socket: flood, size, a newer connection of the user, logout', async () => {
    const flooder = await open('sse-gus');
    await flooder.post(JSON.stringify(Array(6).fill({ type: 'ping' })));
    expect((await flooder.nextOfType<ErrorData>('error')).data?.code).toBe(ErrorCode.RateLimited);

    const big = await open('sse-hal');
    await big.post(
      JSON.stringify({ type: 'room.message', data: { room: 'r', text: 'x'.repeat(11_000) } }),
    );
    expect(await within(big.closed, 'close')).toEqual({
      code: CloseCode.MessageTooBig,
      reason: 'Max payload size exceeded',
    });

    const older = await open('sse-ivy');
    const newer = await open('sse-ivy');
    expect((await within(older.closed, 'close')).code).toBe(CloseCode.Replaced);
    expect(newer.welcome.connectionId).not.toBe(older.welcome.connectionId);
    expect(app.app.get(Hub).ofUser('sse-ivy')).toHaveLength(1);

    const token = await app.devToken('sse-jon');
    const { ticket } = await app.ticket(token);
    const loggedOut = await sseConnected(app.http, `/sse?ticket=${ticket}`);
    clients.push(loggedOut);
    const logout = await fetch(`${app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(logout.status).toBe(204);
    expect((await within(loggedOut.closed, 'close')).code).toBe(CloseCode.SessionRevoked);
  });

  it('recovers the user stream from `since`, and forgets a stream that went away', async () => {
    const first = await open('sse-kim');
    const position = first.welcome.position!;
    first.close();
    await waitUntil(
      () => Promise.resolve(app.app.get(Hub).ofUser('sse-kim').length === 0),
      'the closed stream forgotten',
    );
    const broadcast = app.app.get(BroadcastService);
    await broadcast.toUser('sse-kim', 'missed', { n: 1 });
    await broadcast.toUser('sse-kim', 'missed', { n: 2 });
    const back = await open('sse-kim', `&since=${position.epoch}:${position.offset}`);
    expect(back.welcome).toMatchObject({ recovered: true, missed: 2 });
    expect((await back.nextOfType('missed')).data).toEqual({ n: 1 });
    expect((await back.nextOfType('missed')).data).toEqual({ n: 2 });
  });
});

describe('Server-Sent Events between keep-alives', () => {
  it('keeps a quiet stream open past the idle bound on requests (HANDSHAKE_TIMEOUT_MS)', async () => {
    const app = await startApp({ HANDSHAKE_TIMEOUT_MS: '200', WS_HEARTBEAT_MS: '5000' });
    try {
      const { ticket } = await app.ticket(await app.devToken('quiet'));
      const stream = await sseConnected(app.http, `/sse?ticket=${ticket}`);
      try {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        stream.send({ type: 'ping', id: 'still-here' });
        expect(await stream.nextOfType('pong')).toMatchObject({ id: 'still-here' });
      } finally {
        stream.close();
      }
    } finally {
      await app.close();
    }
  });

  it('drops a stream whose checks are not done within HANDSHAKE_TIMEOUT_MS, and counts it as timeout', async () => {
    const app = await startApp({ HANDSHAKE_TIMEOUT_MS: '300' });
    const { spy, release: finish } = holdNextRedemption(app);
    try {
      const { ticket } = await app.ticket(await app.devToken('slow-check'));
      const stream = new SseTestClient(app.http, `/sse?ticket=${ticket}`);
      expect((await within(stream.closed, 'the stream dropped')).code).toBe(1006);
      finish();
      await spy.mock.results[0].value; // the late decision finds its stream gone
      const samples = await scrape(app.http);
      expect(samples.get('ws_connections_total{outcome="timeout",transport="sse"}')).toBe(1);
      expect(samples.get('ws_connections_total{outcome="accepted",transport="sse"}') ?? 0).toBe(0);
    } finally {
      finish();
      spy.mockRestore();
      await app.close();
    }
  });

  it('answers a send token without an instance with 401, and counts an origin refusal', async () => {
    const app = await startApp();
    try {
      const { ticket } = await app.ticket(await app.devToken('dotless'));
      const stream = await sseConnected(app.http, `/sse?ticket=${ticket}`);
      try {
        const answer = await stream.post('{"type":"ping"}', {
          'x-switchboard-connection': stream.connectionId,
          authorization: 'Bearer no-dot-in-it',
        });
        expect(answer.status).toBe(401);
      } finally {
        stream.close();
      }
      const foreign = new SseTestClient(app.http, '/sse?ticket=x', {
        headers: { origin: 'https://evil.example' },
      });
      expect((await within(foreign.refused, 'refusal')).status).toBe(403);
      const samples = await scrape(app.http);
      expect(samples.get('ws_connections_total{outcome="forbidden_origin",transport="sse"}')).toBe(
        1,
      );
    } finally {
      await app.close();
    }
  });
});

describe('Server-Sent Events and the bound on unauthenticated connections', () => {
  it('counts an accepted stream as authenticated, as an accepted socket', async () => {
    const app = await startApp({}, { limits: { maxUnauthenticatedPerIp: 3 } });
    const streams: SseTestClient[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const { ticket } = await app.ticket(await app.devToken(`bound-${i}`));
        streams.push(await sseConnected(app.http, `/sse?ticket=${ticket}`));
      }
      expect(app.app.get(Hub).size).toBe(6);
    } finally {
      streams.forEach((stream) => stream.close());
      await app.close();
    }
  });
});

describe.each(REDIS_MODES)('Server-Sent Events across instances (%s Redis)', (mode) => {
  let backend: RedisBackend;
  let a: TestApp;
  let b: TestApp;
  const clients: Array<SseTestClient | TestClient> = [];

  beforeAll(async () => {
    backend = await startBackend(mode);
    [a, b] = await twoInstances({ ...backend.env(), WS_MESSAGES_PER_WINDOW: '1000' });
  }, 60_000);
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await backend?.stop();
  }, 30_000);

  it('takes a POST on any instance: it is forwarded to the one that holds the stream', async () => {
    const { ticket } = await a.ticket(await a.devToken('roamer'));
    const onA = await sseConnected(a.http, `/sse?ticket=${ticket}`);
    clients.push(onA);
    const watcher = await connected((await b.ticket(await b.devToken('watcher'))).url);
    clients.push(watcher);
    await watcher.join('lobby');
    // Every POST through B, as a load balancer without sticky sessions would send them.
    const own = {
      'x-switchboard-connection': onA.connectionId,
      authorization: `Bearer ${onA.welcome.sendToken}`,
    };
    const post = (body: object, headers = own) => onA.post(JSON.stringify(body), headers, b.http);
    expect((await post({ type: 'room.join', id: 'j', data: { room: 'lobby' } })).status).toBe(202);
    expect(await onA.nextOfType('room.joined')).toMatchObject({ id: 'j' });
    expect(
      (await post({ type: 'room.message', data: { room: 'lobby', text: 'hop' } })).status,
    ).toBe(202);
    expect((await watcher.nextOfType<{ text: string }>('room.message')).data?.text).toBe('hop');
    // A wrong token is dropped where the stream is: nothing happens.
    const forged = `${onA.welcome.sendToken!.split('.')[0]}.${'A'.repeat(32)}`;
    expect(
      (await post({ type: 'ping', id: 'forged' }, { ...own, authorization: `Bearer ${forged}` }))
        .status,
    ).toBe(202);
    await post({ type: 'ping', id: 'real' });
    expect(await onA.nextOfType('pong')).toMatchObject({ id: 'real' });
    expect(onA.messages.some((m) => m.id === 'forged')).toBe(false);
  });

  it('closes the stream with 1001 and a reconnect hint when its instance drains', async () => {
    const drained = await startApp({ ...backend.env() });
    const { ticket } = await drained.ticket(await drained.devToken('drained'));
    const client = await sseConnected(drained.http, `/sse?ticket=${ticket}`);
    clients.push(client);
    await drained.close();
    expect(await within(client.closed, 'close')).toMatchObject({
      code: CloseCode.GoingAway,
      reason: expect.stringMatching(/^reconnect in \d+ ms$/) as string,
    });
  });
});
