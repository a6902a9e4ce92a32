import {
  type ClientMessage,
  CloseCode,
  ServerMessageType,
  type WelcomeData,
} from '@switchboard/protocol';
import { SwitchboardClient } from './switchboard-client';
import { shareName } from './tab-share';
import type {
  BroadcastChannelFactory,
  BroadcastChannelLike,
  ClientOptions,
  LockManagerLike,
  WebSocketLike,
} from './types';

/** A WebSocket the test drives. */
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
    this.onmessage?.({
      data: JSON.stringify({
        type: ServerMessageType.Welcome,
        data: { ...WELCOME, ...data },
        ts: 0,
      }),
    });
  }
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const WELCOME: Partial<WelcomeData> = {
  connectionId: 'c1',
  user: { id: 'anon:x1', name: 'Ada' },
  heartbeatMs: 3_600_000,
};

/** A ticket request as the server saw it. */
interface TicketRequest {
  credentials: RequestInit['credentials'];
  authorization: string | null;
}

/**
 * The server's HTTP side: the ticket route answers 201 while the browser is signed in (`signedIn`),
 * 401 otherwise; `GET /sse` opens a stream the test writes to.
 */
class FakeServer {
  signedIn = true;
  readonly tickets: TicketRequest[] = [];
  readonly streams: Array<{ url: string; write(text: string): void }> = [];

  readonly fetch = (input: string | URL | Request, init: RequestInit = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const { pathname } = new URL(url);
    if (pathname === '/auth/ws-ticket') {
      this.tickets.push({
        credentials: init.credentials,
        authorization: new Headers(init.headers).get('authorization'),
      });
      if (!this.signedIn) {
        return Promise.resolve(
          new Response(
            JSON.stringify({ statusCode: 401, message: 'missing Authorization, or a cookie' }),
            { status: 401 },
          ),
        );
      }
      const n = this.tickets.length;
      return Promise.resolve(
        new Response(
          JSON.stringify({ ticket: `t${n}`, expiresIn: 30, url: `ws://rt.test/ws?ticket=t${n}` }),
          { status: 201 },
        ),
      );
    }
    if (pathname === '/sse') {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({ start: (c) => (controller = c) });
      this.streams.push({
        url,
        write: (text) => controller.enqueue(new TextEncoder().encode(text)),
      });
      return Promise.resolve(new Response(body, { status: 200 }));
    }
    return Promise.reject(new Error(`unexpected request ${url}`));
  };
}

/**
 * One browser's Web Locks, just enough for tab sharing: a lock is held until its callback's
 * promise settles, `ifAvailable` answers null when held, others queue (an abort leaves the queue).
 */
class FakeLocks {
  private readonly held = new Set<string>();
  private readonly queue: Array<{ name: string; run: () => void }> = [];

  readonly manager: LockManagerLike = {
    request: <T>(
      name: string,
      options: { ifAvailable?: boolean; signal?: AbortSignal },
      callback: (lock: unknown) => T | Promise<T>,
    ): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const run = () => {
          this.held.add(name);
          void Promise.resolve()
            .then(() => callback({ name }))
            .then(resolve, reject)
            .finally(() => {
              this.held.delete(name);
              const next = this.queue.findIndex((entry) => entry.name === name);
              if (next !== -1) {
                this.queue.splice(next, 1)[0].run();
              }
            });
        };
        if (!this.held.has(name)) {
          run();
        } else if (options.ifAvailable) {
          void Promise.resolve()
            .then(() => callback(null))
            .then(resolve, reject);
        } else {
          const entry = { name, run };
          this.queue.push(entry);
          options.signal?.addEventListener('abort', () => {
            this.queue.splice(this.queue.indexOf(entry), 1);
            reject(new DOMException('aborted', 'AbortError'));
          });
        }
      }),
    query: () => Promise.resolve({ held: [...this.held].map((name) => ({ name })) }),
  };
}

/** BroadcastChannel between the tabs of one browser: never back to the sender. */
function channels(): { Channel: BroadcastChannelFactory; names: string[] } {
  const open = new Set<FakeChannel>();
  const names: string[] = [];
  class FakeChannel implements BroadcastChannelLike {
    onmessage: ((event: { data: unknown }) => void) | null = null;
    constructor(readonly name: string) {
      open.add(this);
      names.push(name);
    }
    postMessage(message: unknown): void {
      for (const other of open) {
        if (other !== this && other.name === this.name) {
          const data = structuredClone(message);
          void Promise.resolve().then(() => other.onmessage?.({ data }));
        }
      }
    }
    close(): void {
      open.delete(this);
    }
  }
  return { Channel: FakeChannel, names };
}

describe('SwitchboardClient in a cookie session (no getAccessToken)', () => {
  let server: FakeServer;
  const clients: SwitchboardClient[] = [];

  beforeEach(() => {
    jest.useFakeTimers();
    FakeSocket.all = [];
    server = new FakeServer();
  });
  afterEach(() => {
    clients.splice(0).forEach((client) => client.close());
    jest.useRealTimers();
  });

  function cookieClient(options: Partial<ClientOptions> = {}): SwitchboardClient {
    const client = new SwitchboardClient({
      url: 'http://rt.test/',
      WebSocket: FakeSocket,
      fetch: server.fetch,
      backoff: { random: () => 0 },
      ...options,
    });
    clients.push(client);
    return client;
  }

  it('asks for its ticket with the browser’s cookies and no Authorization, then connects with it', async () => {
    const client = cookieClient();
    client.connect();
    await jest.advanceTimersByTimeAsync(0);
    expect(server.tickets).toEqual([{ credentials: 'include', authorization: null }]);
    expect(FakeSocket.last.url).toBe('ws://rt.test/ws?ticket=t1');
    FakeSocket.last.welcome();
    expect(client.state).toBe('open');
    expect(client.welcome?.user).toEqual({ id: 'anon:x1', name: 'Ada' });
  });

  it('stops signed-out at the first 401: the browser is not signed in, and nothing retries', async () => {
    server.signedIn = false;
    const client = cookieClient();
    const stopped: Array<{ state: string; message: string }> = [];
    client.on('stopped', ({ state, message }) => stopped.push({ state, message }));
    const reconnecting = jest.fn();
    client.on('reconnecting', reconnecting);
    client.connect();
    const joined = expect(client.join('lobby')).rejects.toThrow(
      'not connected (state: signed-out): not signed in: missing Authorization, or a cookie',
    );
    await jest.advanceTimersByTimeAsync(120_000);
    await joined;
    expect(stopped).toEqual([
      { state: 'signed-out', message: 'not signed in: missing Authorization, or a cookie' },
    ]);
    expect(server.tickets).toHaveLength(1);
    expect(reconnecting).not.toHaveBeenCalled();
    expect(FakeSocket.all).toHaveLength(0);

    // Signed in meanwhile (a guest sign-in, say): connect() tries again.
    server.signedIn = true;
    client.connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.welcome();
    expect(client.state).toBe('open');
  });

  it('comes back with a new cookie ticket after 4002, and stops when the cookie has expired too', async () => {
    const client = cookieClient();
    const stopped = jest.fn();
    client.on('stopped', stopped);
    client.connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.welcome();
    FakeSocket.last.drop(CloseCode.SessionExpired, 'session expired');
    await jest.advanceTimersByTimeAsync(0);
    expect(server.tickets).toHaveLength(2);
    expect(server.tickets[1]).toEqual({ credentials: 'include', authorization: null });
    FakeSocket.last.welcome();
    expect(client.state).toBe('open');

    server.signedIn = false;
    FakeSocket.last.drop(CloseCode.SessionExpired, 'session expired');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(server.tickets).toHaveLength(3);
    expect(client.state).toBe('signed-out');
    expect(stopped).toHaveBeenCalledTimes(1);
  });

  it('keeps sending a token when it has one, whatever cookies the browser holds', async () => {
    const client = cookieClient({ getAccessToken: () => 'a.token' });
    client.connect();
    await jest.advanceTimersByTimeAsync(0);
    expect(server.tickets).toEqual([{ credentials: undefined, authorization: 'Bearer a.token' }]);
  });

  it('connects over Server-Sent Events with the ticket its cookies got', async () => {
    const client = cookieClient({ transports: ['sse'] });
    client.connect();
    await jest.advanceTimersByTimeAsync(0);
    expect(server.tickets).toEqual([{ credentials: 'include', authorization: null }]);
    expect(server.streams.map((stream) => stream.url)).toEqual(['http://rt.test/sse?ticket=t1']);
    const welcome = { ...WELCOME, sendToken: 'send-1' };
    server.streams[0].write(
      `event: welcome\ndata: ${JSON.stringify({ type: ServerMessageType.Welcome, data: welcome, ts: 0 })}\n\n`,
    );
    await jest.advanceTimersByTimeAsync(0);
    expect(client.state).toBe('open');
    expect(client.transport).toBe('sse');
  });

  it('shares one connection between the tabs of the browser, named by URL alone', async () => {
    const locks = new FakeLocks();
    const { Channel, names } = channels();
    const tab = () =>
      cookieClient({
        shareAcrossTabs: true,
        locks: locks.manager,
        BroadcastChannel: Channel,
      });
    const first = tab();
    first.connect();
    await jest.advanceTimersByTimeAsync(600);
    FakeSocket.last.welcome();
    const second = tab();
    second.connect();
    await jest.advanceTimersByTimeAsync(600);

    expect([first.role, second.role]).toEqual(['leader', 'follower']);
    expect([first.state, second.state]).toEqual(['open', 'open']);
    expect(second.welcome?.user).toEqual({ id: 'anon:x1', name: 'Ada' });
    expect(server.tickets).toHaveLength(1);
    expect(FakeSocket.all).toHaveLength(1);
    expect(new Set(names)).toEqual(new Set(['switchboard-cookie:http://rt.test']));
  });

  it('never shares with the token sessions of the same server', async () => {
    expect(await shareName({ url: 'http://rt.test/' })).toBe('switchboard-cookie:http://rt.test');
    const token = `h.${Buffer.from(JSON.stringify({ sub: 'ada' })).toString('base64url')}.s`;
    expect(await shareName({ url: 'http://rt.test', getAccessToken: () => token })).toBe(
      'switchboard:http://rt.test:ada',
    );
  });
});
