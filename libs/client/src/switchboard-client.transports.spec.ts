import {
  type ClientMessage,
  ClientMessageType,
  CloseCode,
  ServerMessageType,
  type WelcomeData,
} from '@switchboard/protocol';
import { FALLBACK_AFTER_FAILURES_ONCE_WELCOMED, FALLBACK_HOLD_MS } from './connection';
import { SwitchboardClient } from './switchboard-client';
import { SSE_WELCOME_TIMEOUT_MS } from './transports/sse.transport';
import type { ClientOptions, ReconnectingInfo, WebSocketLike } from './types';

/** A WebSocket the test drives (see switchboard-client.overload.spec.ts). */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  readonly sent: ClientMessage[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientMessage);
  }
  close(): void {}
  welcome(data: Partial<WelcomeData> = {}): void {
    this.readyState = 1;
    this.onopen?.({});
    this.deliver(ServerMessageType.Welcome, { ...WELCOME, ...data });
  }
  deliver(type: string, data: unknown, extra: Record<string, unknown> = {}): void {
    this.onmessage?.({ data: JSON.stringify({ type, data, ts: 0, ...extra }) });
  }
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const WELCOME: Partial<WelcomeData> = {
  connectionId: 'c1',
  user: { id: 'u1', name: 'U' },
  heartbeatMs: 3_600_000,
};

/** One `GET /sse` the server answered with 200: the test writes its events. */
class FakeStream {
  readonly stream: ReadableStream<Uint8Array>;
  cancelled = false;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private done = false;

  constructor(
    readonly url: string,
    signal: AbortSignal | undefined,
  ) {
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
      },
      cancel: () => {
        this.cancelled = true;
      },
    });
    signal?.addEventListener('abort', () => {
      this.cancelled = true;
      this.fail(new DOMException('aborted', 'AbortError'));
    });
  }
  write(text: string): void {
    this.controller.enqueue(new TextEncoder().encode(text));
  }
  frame(type: string, data: unknown, extra: Record<string, unknown> = {}): void {
    this.write(`event: ${type}\ndata: ${JSON.stringify({ type, data, ts: 0, ...extra })}\n\n`);
  }
  welcome(data: Partial<WelcomeData> = {}): void {
    this.frame(ServerMessageType.Welcome, { ...WELCOME, sendToken: 'send-1', ...data });
  }
  close(code: number, reason = ''): void {
    this.write(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    this.end();
  }
  end(): void {
    if (!this.done) {
      this.done = true;
      this.controller.close();
    }
  }
  fail(error: Error): void {
    if (!this.done) {
      this.done = true;
      this.controller.error(error);
    }
  }
}

interface Post {
  connection: string | null;
  authorization: string | null;
  body: unknown;
}

/** The server's HTTP side: tickets, event streams and POSTs, each answered as the test says. */
class FakeServer {
  tickets = 0;
  readonly streams: FakeStream[] = [];
  readonly posts: Post[] = [];
  /** Answers for the next `GET /sse` requests instead of a stream. */
  readonly streamAnswers: Array<() => Response> = [];
  /** Answers for the next POSTs instead of 202. */
  readonly postAnswers: Array<() => Promise<Response> | Response> = [];
  /** The POSTs not answered yet, when `holdPosts` is set. */
  readonly held: Array<() => void> = [];
  holdPosts = false;

  get stream(): FakeStream {
    return this.streams[this.streams.length - 1];
  }

  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const { pathname } = new URL(url);
    if (pathname === '/auth/ws-ticket') {
      this.tickets += 1;
      const n = this.tickets;
      return json(201, { ticket: `t${n}`, expiresIn: 30, url: `ws://rt.test/ws?ticket=t${n}` });
    }
    if (pathname === '/sse') {
      const answer = this.streamAnswers.shift();
      if (answer !== undefined) {
        return answer();
      }
      const stream = new FakeStream(url, init.signal ?? undefined);
      this.streams.push(stream);
      return new Response(stream.stream, {
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
      });
    }
    if (pathname === '/sse/messages') {
      const headers = new Headers(init.headers);
      this.posts.push({
        connection: headers.get('x-switchboard-connection'),
        authorization: headers.get('authorization'),
        body: JSON.parse(init.body as string) as unknown,
      });
      if (this.holdPosts) {
        await new Promise<void>((resolve) => this.held.push(resolve));
      }
      return (await this.postAnswers.shift()?.()) ?? json(202, { accepted: 1 });
    }
    throw new Error(`unexpected request ${url}`);
  };

  /** The frames every POST carried, in order. */
  frames(): ClientMessage[] {
    return this.posts.flatMap((post) =>
      Array.isArray(post.body) ? (post.body as ClientMessage[]) : [post.body as ClientMessage],
    );
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A page's `sessionStorage`, for the fallback the client remembers. */
class FakeStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

describe('SwitchboardClient transports', () => {
  let server: FakeServer;
  let events: ReconnectingInfo[];
  const clients: SwitchboardClient[] = [];
  const globals = globalThis as { sessionStorage?: FakeStorage };

  beforeEach(() => {
    jest.useFakeTimers();
    FakeSocket.all = [];
    server = new FakeServer();
    events = [];
    globals.sessionStorage = new FakeStorage();
  });
  afterEach(() => {
    clients.splice(0).forEach((client) => client.close());
    delete globals.sessionStorage;
    jest.useRealTimers();
  });

  function client(options: Partial<ClientOptions> = {}): SwitchboardClient {
    const created = new SwitchboardClient({
      url: 'http://rt.test',
      getAccessToken: () => 'token',
      WebSocket: FakeSocket,
      fetch: server.fetch,
      backoff: { random: () => 0 },
      ...options,
    });
    created.on('reconnecting', (info) => events.push(info));
    clients.push(created);
    return created;
  }
  const settle = () => jest.advanceTimersByTimeAsync(0);

  /** A client that fell back to SSE (two upgrades broke before open) and is open over it. */
  async function overSse(options: Partial<ClientOptions> = {}): Promise<SwitchboardClient> {
    const c = client(options);
    c.connect();
    await settle();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    server.stream.welcome();
    await settle();
    expect(c.state).toBe('open');
    return c;
  }

  it('falls back to SSE after two upgrades break before open, with the unspent ticket, and says so', async () => {
    const c = client();
    const transports: Array<string | null> = [];
    c.on('transport', (transport) => transports.push(transport));
    c.connect();
    await settle();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    expect(events.map((e) => [e.reason, e.delayMs])).toEqual([
      ['upgrade failed', 0],
      ['websocket failed, trying sse', 0],
    ]);
    expect(server.tickets).toBe(1);
    expect(server.stream.url).toBe('http://rt.test/sse?ticket=t1');
    expect(c.transport).toBeNull();
    server.stream.welcome();
    await settle();
    expect(c.state).toBe('open');
    expect(c.transport).toBe('sse');
    expect(transports).toEqual(['sse']);
    expect(
      JSON.parse(globals.sessionStorage!.getItem('switchboard:transport:http://rt.test')!),
    ).toEqual({ transport: 'sse', at: expect.any(Number) });
  });

  it('does not fall back when the server refused or closed the socket itself', async () => {
    const c = client();
    c.connect();
    await settle();
    FakeSocket.last.drop(CloseCode.TooManyAttempts, 'retry after 1 s');
    await jest.advanceTimersByTimeAsync(1_000);
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    FakeSocket.last.welcome();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    // 4029, then one break; a welcome; a close after it, then one break: never two in a row.
    expect(server.streams).toHaveLength(0);
    expect(FakeSocket.all).toHaveLength(5);
    expect(c.state).toBe('reconnecting');
  });

  it('once welcomed over the WebSocket, takes breaks before open for refusals (a deploy) and falls back only after five', async () => {
    const c = client();
    c.connect();
    await settle();
    FakeSocket.last.welcome();
    await settle();
    // The instance drains; the upgrades that follow land on instances refusing them with 503,
    // which a browser sees only as 1006 before open.
    const drainThenBreak = async (breaks: number): Promise<void> => {
      FakeSocket.last.drop(CloseCode.GoingAway, 'server shutting down, reconnect in 0 ms');
      for (let attempt = 1; attempt <= breaks; attempt++) {
        await jest.advanceTimersByTimeAsync(1_000);
        FakeSocket.last.drop(CloseCode.Abnormal);
      }
      await settle();
    };
    await drainThenBreak(4);
    expect(server.streams).toHaveLength(0);
    expect(FakeSocket.all).toHaveLength(6);
    await jest.advanceTimersByTimeAsync(1_000);
    FakeSocket.last.welcome(); // one got through: the count starts over
    await drainThenBreak(5);
    // Five in a row: the way no longer passes WebSockets (a proxy met on a new network).
    expect(FakeSocket.all).toHaveLength(11);
    expect(events.at(-1)?.reason).toBe('websocket failed, trying sse');
    expect(server.streams).toHaveLength(1);
  });

  it('sends the frames of one tick in one POST, one POST at a time, and gets the replies on the stream', async () => {
    const c = await overSse();
    server.holdPosts = true;
    c.message('lobby', 'one');
    c.typing('lobby');
    const joined = c.join('lobby');
    await settle();
    expect(server.posts).toHaveLength(1);
    expect(server.posts[0]).toEqual({
      connection: 'c1',
      authorization: 'Bearer send-1',
      body: [
        { type: 'room.message', data: { room: 'lobby', text: 'one' } },
        { type: 'typing', data: { room: 'lobby' } },
        { type: 'room.join', id: 'r1', data: { room: 'lobby' } },
      ],
    });
    c.message('lobby', 'two');
    c.message('lobby', 'three');
    await settle();
    expect(server.posts).toHaveLength(1); // the first is not answered yet
    server.held.shift()!();
    await settle();
    expect(server.posts).toHaveLength(2);
    expect(server.posts[1].body).toEqual([
      { type: 'room.message', data: { room: 'lobby', text: 'two' } },
      { type: 'room.message', data: { room: 'lobby', text: 'three' } },
    ]);
    server.held.shift()!();
    c.message('lobby', 'alone');
    await settle();
    server.held.shift()!();
    expect(server.posts[2].body).toEqual({
      type: 'room.message',
      data: { room: 'lobby', text: 'alone' },
    });
    server.stream.frame(
      ServerMessageType.RoomJoined,
      { room: 'lobby', members: [], count: 1, position: { epoch: 'e', offset: 4 } },
      { id: 'r1' },
    );
    await settle();
    await expect(joined).resolves.toMatchObject({ room: 'lobby', count: 1 });
    expect(c.position('lobby')).toEqual({ epoch: 'e', offset: 4 });
  });

  it('splits a queue over 50 frames or 64 KiB into several POSTs', async () => {
    const c = await overSse();
    for (let i = 0; i < 60; i++) {
      c.message('lobby', `m${i}`);
    }
    const big = 'x'.repeat(4_000);
    for (let i = 0; i < 20; i++) {
      c.message('lobby', `${big}${'é'.repeat(100)}`);
    }
    await settle();
    const sizes = server.posts.map((post) => (post.body as unknown[]).length);
    expect(sizes[0]).toBe(50);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(80);
    for (const post of server.posts) {
      expect(new TextEncoder().encode(JSON.stringify(post.body)).length).toBeLessThanOrEqual(
        64 * 1024,
      );
    }
    expect(
      server.frames().map((frame) => (frame.data as { text: string }).text.slice(0, 3)),
    ).toEqual([
      ...Array.from({ length: 60 }, (_, i) => `m${i}`.slice(0, 3)),
      ...Array.from({ length: 20 }, () => 'xxx'),
    ]);
  });

  it('answers every close code over SSE as over a WebSocket', async () => {
    const c = await overSse();
    const stopped: Array<{ state: string; code?: number }> = [];
    c.on('stopped', ({ state, code }) => stopped.push({ state, code }));

    server.stream.close(CloseCode.GoingAway, 'reconnect in 4310 ms');
    await settle();
    expect(c.transport).toBeNull();
    expect(events.at(-1)).toMatchObject({ delayMs: 4_310, reason: '1001 reconnect in 4310 ms' });
    await jest.advanceTimersByTimeAsync(4_310);
    expect(server.tickets).toBe(2);

    server.stream.close(CloseCode.TooManyAttempts, 'retry after 5 s');
    await settle();
    expect(events.at(-1)).toMatchObject({ delayMs: 5_000, reason: '4029 retry after 5 s' });
    await jest.advanceTimersByTimeAsync(5_000);

    server.stream.close(CloseCode.Unauthorized, 'invalid, expired or used ticket');
    await settle();
    expect(events.at(-1)?.reason).toBe('4001 invalid, expired or used ticket');
    await settle();
    expect(server.streams.at(-1)!.url).toBe(`http://rt.test/sse?ticket=t${server.tickets}`);

    server.stream.welcome();
    await settle();
    server.stream.close(CloseCode.Replaced, 'replaced by a newer connection');
    await settle();
    expect(c.state).toBe('replaced');
    expect(stopped).toEqual([{ state: 'replaced', code: CloseCode.Replaced }]);
  });

  it('reconnects with a new ticket when the stream ends without a close event (1006)', async () => {
    const c = await overSse();
    server.stream.end();
    await settle();
    expect(c.state).toBe('reconnecting');
    expect(events.at(-1)).toMatchObject({ reason: '1006' });
    await settle();
    expect(server.tickets).toBe(2);
    expect(server.stream.url).toBe('http://rt.test/sse?ticket=t2');
  });

  it('waits the Retry-After of a stream refused with 503, with the same ticket', async () => {
    client({ transports: ['sse'] }).connect();
    server.streamAnswers.push(() =>
      json(503, { statusCode: 503, retryAfterMs: 2_500 }, { 'retry-after': '3' }),
    );
    await settle();
    expect(events).toEqual([{ attempt: 1, delayMs: 2_500, reason: 'stream 503' }]);
    await jest.advanceTimersByTimeAsync(2_500);
    expect(server.tickets).toBe(1);
    expect(server.stream.url).toBe('http://rt.test/sse?ticket=t1');
  });

  it('recovers across transports: the same positions in the stream URL and the rejoin', async () => {
    const c = client();
    c.connect();
    await settle();
    FakeSocket.last.welcome({ position: { epoch: 'E', offset: 7 } });
    const joined = c.join('lobby');
    await settle();
    FakeSocket.last.deliver(
      ServerMessageType.RoomJoined,
      { room: 'lobby', members: [], count: 1, position: { epoch: 'R', offset: 3 } },
      { id: 'r1' },
    );
    await joined;
    FakeSocket.last.deliver('note', {}, { offset: 8 });
    FakeSocket.last.deliver(ServerMessageType.RoomMessage, {}, { offset: 4, room: 'lobby' });
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    // Welcomed over the WebSocket before: it takes more breaks in a row to fall back.
    for (let attempt = 1; attempt <= FALLBACK_AFTER_FAILURES_ONCE_WELCOMED; attempt++) {
      FakeSocket.last.drop(CloseCode.Abnormal);
      await settle();
    }
    expect(server.stream.url).toBe(
      `http://rt.test/sse?ticket=t2&since=${encodeURIComponent('E:8')}`,
    );
    server.stream.welcome({ position: { epoch: 'E', offset: 8 }, recovered: true, missed: 0 });
    await settle();
    expect(server.frames()).toEqual([
      { type: 'room.join', id: 'r2', data: { room: 'lobby', since: { epoch: 'R', offset: 4 } } },
    ]);
  });

  it('starts over SSE in the same page session, and tries the WebSocket again after 5 minutes', async () => {
    const first = await overSse();
    first.close();
    const second = client();
    second.connect();
    await settle();
    expect(FakeSocket.all).toHaveLength(2); // the first client's two
    server.stream.welcome();
    await settle();
    expect(second.transport).toBe('sse');

    await jest.advanceTimersByTimeAsync(FALLBACK_HOLD_MS);
    server.stream.close(CloseCode.InternalError);
    await settle();
    expect(FakeSocket.all).toHaveLength(3);
    FakeSocket.last.welcome();
    expect(second.transport).toBe('websocket');
    expect(globals.sessionStorage!.items.size).toBe(0);
  });

  it('treats a stream that carries nothing for two heartbeats as dead; comments keep it alive', async () => {
    const c = client({ transports: ['sse'], pingIntervalMs: 3_600_000 });
    c.connect();
    await settle();
    server.stream.welcome({ heartbeatMs: 1_000 });
    await settle();
    for (let i = 0; i < 5; i++) {
      await jest.advanceTimersByTimeAsync(1_500);
      server.stream.write(': ping\n\n');
    }
    expect(c.state).toBe('open');
    await jest.advanceTimersByTimeAsync(2_000);
    expect(c.state).toBe('reconnecting');
    expect(events.at(-1)?.reason).toBe('1006 stream idle');
  });

  it('gives up on a stream whose welcome never comes (a buffering proxy)', async () => {
    client({ transports: ['sse'] }).connect();
    await jest.advanceTimersByTimeAsync(SSE_WELCOME_TIMEOUT_MS);
    expect(events).toEqual([{ attempt: 1, delayMs: 0, reason: '1006 no welcome' }]);
    expect(server.stream.cancelled).toBe(true);
  });

  it('after a POST answered 401, lets the stream say why (4003), else reconnects (1006)', async () => {
    const c = await overSse();
    server.postAnswers.push(() => json(401, { statusCode: 401 }));
    c.message('lobby', 'x');
    await settle();
    server.stream.close(CloseCode.SessionRevoked, 'session revoked');
    await settle();
    expect(c.state).toBe('signed-out');

    const d = await overSse();
    server.postAnswers.push(() => json(401, { statusCode: 401 }));
    d.message('lobby', 'y');
    await jest.advanceTimersByTimeAsync(1_000);
    expect(d.state).toBe('reconnecting');
    expect(events.at(-1)?.reason).toBe('1006 send refused (401)');
  });

  it('closes with 1009 when a POST is too large (413), and with 1006 when a POST fails', async () => {
    const c = await overSse();
    const closes: number[] = [];
    c.on('close', ({ code }) => closes.push(code));
    server.postAnswers.push(() => json(413, { statusCode: 413 }));
    c.message('lobby', 'big');
    await settle();
    expect(closes).toEqual([CloseCode.MessageTooBig]);
    await settle();
    server.stream.welcome();
    await settle();
    server.postAnswers.push(() => Promise.reject(new TypeError('network')));
    const failed = expect(c.request('custom')).rejects.toThrow(
      'connection closed: closed without a close frame (1006, send failed)',
    );
    await settle();
    await failed;
  });

  it('closes the stream on close(), and reports 1000', async () => {
    const c = await overSse();
    const closes: Array<{ code: number; reason: string }> = [];
    c.on('close', (close) => closes.push(close));
    const stream = server.stream;
    c.close();
    await settle();
    expect(stream.cancelled).toBe(true);
    expect(closes).toEqual([{ code: 1000, reason: 'bye' }]);
    expect(c.state).toBe('closed');
  });

  it('uses SSE in Node without a WebSocket class, and refuses transports it does not know', async () => {
    const globalSocket = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
    delete (globalThis as { WebSocket?: unknown }).WebSocket; // Node 22 and later have one
    try {
      const c = client({ WebSocket: undefined });
      c.connect();
      await settle();
      expect(server.streams).toHaveLength(1);
      expect(() => client({ transports: ['websocket'], WebSocket: undefined })).toThrow(
        /needs WebSocket/,
      );
    } finally {
      if (globalSocket !== undefined) {
        Object.defineProperty(globalThis, 'WebSocket', globalSocket);
      }
    }
    expect(() => client({ transports: [] })).toThrow(/transports must name each transport once/);
    expect(() => client({ transports: ['sse', 'sse'] })).toThrow(/once/);
    expect(() => client({ transports: ['carrier-pigeon' as 'sse'] })).toThrow(/unknown transport/);
  });

  it('sends application pings over SSE and reconnects when the pong does not come', async () => {
    const c = client({ transports: ['sse'], pingIntervalMs: 1_000, pongTimeoutMs: 500 });
    c.connect();
    await settle();
    server.stream.welcome({ heartbeatMs: 60_000 });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(server.frames()).toEqual([{ type: ClientMessageType.Ping }]);
    server.stream.frame(ServerMessageType.Pong, undefined);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(c.state).toBe('open');
    await jest.advanceTimersByTimeAsync(500);
    expect(c.state).toBe('reconnecting');
    expect(events.at(-1)?.reason).toBe('1006 ping timeout');
  });
});
