import { CloseCode, ServerMessageType, type WelcomeData } from '@switchboard/protocol';
import { SwitchboardClient } from './switchboard-client';
import type { ReconnectingInfo, WebSocketLike } from './types';

/** A WebSocket the test drives: it opens, welcomes and closes when told to. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(): void {}
  close(): void {}

  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  welcome(): void {
    this.readyState = 1;
    this.onopen?.({});
    const data: Partial<WelcomeData> = { user: { id: 'u1', name: 'U' }, heartbeatMs: 3_600_000 };
    this.onmessage?.({ data: JSON.stringify({ type: ServerMessageType.Welcome, data, ts: 0 }) });
  }
  /** The server closes the socket; a close before welcome() never opened (an upgrade failure). */
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** `ws` in Node: an upgrade answered with an HTTP status comes as `unexpected-response`. */
class FakeNodeSocket extends FakeSocket {
  private refused: ((request: unknown, response: unknown) => void) | null = null;
  on(event: string, listener: (request: unknown, response: unknown) => void): void {
    if (event === 'unexpected-response') {
      this.refused = listener;
    }
  }
  terminate(): void {
    this.drop(CloseCode.Abnormal);
  }
  refuse(statusCode: number, headers: Record<string, string>): void {
    this.refused?.({}, { statusCode, headers });
  }
}

type Answer = () => Response | Error;

const ticket = (n: number, expiresIn = 30) =>
  new Response(
    JSON.stringify({ ticket: `t${n}`, expiresIn, url: `ws://rt.test/ws?ticket=t${n}` }),
    { status: 201 },
  );

describe('SwitchboardClient under overload', () => {
  let tickets: number[];
  let events: ReconnectingInfo[];
  const clients: SwitchboardClient[] = [];
  const start = Date.now();

  beforeEach(() => {
    jest.useFakeTimers({ now: start });
    FakeSocket.all = [];
    tickets = [];
    events = [];
  });
  afterEach(() => {
    clients.splice(0).forEach((client) => client.close());
    jest.useRealTimers();
  });

  /** A client whose ticket requests get `answers` in turn, then fresh tickets. */
  function client(
    answers: Answer[] = [],
    options: {
      random?: () => number;
      initialMs?: number;
      node?: boolean;
      transports?: Array<'websocket' | 'sse'>;
    } = {},
  ): SwitchboardClient {
    const created = new SwitchboardClient({
      url: 'http://rt.test',
      getAccessToken: () => 'token',
      WebSocket: options.node ? FakeNodeSocket : FakeSocket,
      fetch: () => {
        tickets.push(Date.now() - start);
        const answer = answers.shift()?.() ?? ticket(tickets.length);
        return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
      },
      backoff: { random: options.random ?? (() => 0), initialMs: options.initialMs },
      transports: options.transports,
    });
    created.on('reconnecting', (info) => events.push(info));
    clients.push(created);
    return created;
  }
  const busy =
    (headers: Record<string, string>, body = 'busy') =>
    () =>
      new Response(body, { status: 503, headers });

  it('waits the Retry-After of a ticket request refused with 503', async () => {
    client([busy({ 'retry-after': '7' })]).connect();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(tickets).toEqual([0, 7_000]);
    expect(events).toEqual([{ attempt: 1, delayMs: 7_000, reason: 'ticket 503' }]);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('prefers the body’s retryAfterMs to the coarser Retry-After', async () => {
    const body = JSON.stringify({ statusCode: 503, error: 'x', message: 'y', retryAfterMs: 2_345 });
    client([busy({ 'retry-after': '3' }, body)]).connect();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(tickets).toEqual([0, 2_345]);
  });

  it('waits a hint plus a little jitter, and hinted refusals do not widen the backoff', async () => {
    client([busy({ 'retry-after': '2' })], { random: () => 0.5, initialMs: 10_000 }).connect();
    await jest.advanceTimersByTimeAsync(0);
    // The server's hint (2 s + 0.5 × 200 ms), not the backoff's 0.5 × 10 s.
    expect(events).toEqual([{ attempt: 1, delayMs: 2_100, reason: 'ticket 503' }]);
    clients.splice(0).forEach((c) => c.close());
    events = [];
    // Three hinted refusals, then a failure without a hint: its delay is the first backoff
    // window's (0.5 × 1 s), not the fourth's (0.5 × 8 s).
    const hinted = busy({ 'retry-after': '1' });
    client([hinted, hinted, hinted, () => new Error('network down')], {
      random: () => 0.5,
      initialMs: 1_000,
    }).connect();
    await jest.advanceTimersByTimeAsync(3 * 1_050 + 10);
    expect(events.map((e) => e.delayMs)).toEqual([1_050, 1_050, 1_050, 500]);
  });

  it('waits the `retry after N s` of a 4029 close', async () => {
    client().connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.drop(CloseCode.TooManyAttempts, 'retry after 5 s');
    await jest.advanceTimersByTimeAsync(6_000);
    expect(tickets).toEqual([0, 5_000]);
    expect(events).toEqual([{ attempt: 1, delayMs: 5_000, reason: '4029 retry after 5 s' }]);
  });

  it('waits the `reconnect in N ms` of a 1001 close, after the socket was open', async () => {
    const c = client();
    c.connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.welcome();
    expect(c.state).toBe('open');
    FakeSocket.last.drop(CloseCode.GoingAway, 'reconnect in 4310 ms');
    expect(c.state).toBe('reconnecting');
    expect(events).toEqual([{ attempt: 1, delayMs: 4_310, reason: '1001 reconnect in 4310 ms' }]);
    await jest.advanceTimersByTimeAsync(4_309);
    expect(tickets).toEqual([0]);
    await jest.advanceTimersByTimeAsync(1);
    expect(tickets).toEqual([0, 4_310]);
    FakeSocket.last.welcome();
    expect(c.state).toBe('open');
  });

  it('retries an upgrade that failed before open with the same ticket, and gets a new one after 4001', async () => {
    client().connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.drop(CloseCode.Abnormal);
    expect(events).toEqual([{ attempt: 1, delayMs: 0, reason: 'upgrade failed' }]);
    await jest.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all.map((s) => s.url)).toEqual([
      'ws://rt.test/ws?ticket=t1',
      'ws://rt.test/ws?ticket=t1',
    ]);
    expect(tickets).toHaveLength(1);
    FakeSocket.last.drop(CloseCode.Unauthorized, 'ticket used');
    await jest.advanceTimersByTimeAsync(0);
    expect(tickets).toHaveLength(2);
    expect(FakeSocket.last.url).toBe('ws://rt.test/ws?ticket=t2');
    expect(events[1]).toEqual({ attempt: 2, delayMs: 0, reason: '4001 ticket used' });
  });

  it('fetches a new ticket instead of retrying one that is about to expire', async () => {
    // WebSocket only: two upgrade failures in a row would otherwise fall back to SSE.
    client([() => ticket(1, 6)], { random: () => 0.999999, transports: ['websocket'] }).connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.drop(CloseCode.Abnormal); // waits 999 ms: the ticket is good for 1 s more
    await jest.advanceTimersByTimeAsync(999);
    expect(tickets).toHaveLength(1);
    FakeSocket.last.drop(CloseCode.Abnormal); // waits 1999 ms: past the 5 s margin
    await jest.advanceTimersByTimeAsync(1_999);
    expect(tickets).toHaveLength(2);
    expect(FakeSocket.last.url).toBe('ws://rt.test/ws?ticket=t2');
  });

  it('does not reuse the ticket of a socket that opened (the upgrade spent it)', async () => {
    client().connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.onopen?.({});
    FakeSocket.last.drop(CloseCode.Abnormal);
    await jest.advanceTimersByTimeAsync(0);
    expect(tickets).toHaveLength(2);
  });

  it('honours the Retry-After of an upgrade refused with 503 in Node (ws), with the same ticket', async () => {
    client([], { node: true }).connect();
    await jest.advanceTimersByTimeAsync(0);
    (FakeSocket.last as FakeNodeSocket).refuse(503, { 'retry-after': '3' });
    expect(events).toEqual([{ attempt: 1, delayMs: 3_000, reason: 'upgrade 503' }]);
    await jest.advanceTimersByTimeAsync(3_000);
    expect(tickets).toEqual([0]);
    expect(FakeSocket.all.map((s) => s.url)).toEqual([
      'ws://rt.test/ws?ticket=t1',
      'ws://rt.test/ws?ticket=t1',
    ]);
  });

  it('keeps backing off across sockets that open and close at once, and starts over after 10 s open', async () => {
    client([], { random: () => 0.999999 }).connect();
    await jest.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 3; i++) {
      FakeSocket.last.welcome();
      FakeSocket.last.drop(CloseCode.InternalError);
      await jest.advanceTimersByTimeAsync(events[events.length - 1].delayMs);
    }
    expect(events.map((e) => [e.attempt, e.delayMs])).toEqual([
      [1, 999],
      [2, 1_999],
      [3, 3_999],
    ]);
    FakeSocket.last.welcome();
    await jest.advanceTimersByTimeAsync(9_999);
    FakeSocket.last.drop(CloseCode.InternalError);
    expect(events[3]).toEqual({ attempt: 4, delayMs: 7_999, reason: '1011' });
    await jest.advanceTimersByTimeAsync(7_999);
    FakeSocket.last.welcome();
    await jest.advanceTimersByTimeAsync(10_000);
    FakeSocket.last.drop(CloseCode.InternalError);
    expect(events[4]).toEqual({ attempt: 1, delayMs: 999, reason: '1011' });
  });

  describe('in a browser', () => {
    const window = new EventTarget();
    const globals = globalThis as Partial<
      Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
    >;
    beforeEach(() => {
      globals.addEventListener = window.addEventListener.bind(window);
      globals.removeEventListener = window.removeEventListener.bind(window);
    });
    afterEach(() => {
      delete globals.addEventListener;
      delete globals.removeEventListener;
    });

    it('tries again within a second of coming back online instead of waiting out the backoff', async () => {
      const c = client([() => new Error('offline')], { random: () => 0.5, initialMs: 60_000 });
      c.connect();
      await jest.advanceTimersByTimeAsync(0);
      expect(events).toEqual([{ attempt: 1, delayMs: 15_000, reason: 'ticket failed' }]);
      await jest.advanceTimersByTimeAsync(1_000);
      window.dispatchEvent(new Event('online'));
      expect(events[1]).toEqual({ attempt: 1, delayMs: 500, reason: 'online' });
      await jest.advanceTimersByTimeAsync(500);
      expect(tickets).toEqual([0, 1_500]);
      FakeSocket.last.welcome();
      expect(c.state).toBe('open');
      window.dispatchEvent(new Event('online'));
      expect(events).toHaveLength(2);
    });

    it('does not come back online before a server’s hint allows', async () => {
      client([busy({ 'retry-after': '20' })]).connect();
      await jest.advanceTimersByTimeAsync(5_000);
      window.dispatchEvent(new Event('online'));
      expect(events).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(15_000);
      expect(tickets).toEqual([0, 20_000]);
    });

    it('stops listening once closed', async () => {
      const c = client([() => new Error('offline')], { initialMs: 60_000, random: () => 0.5 });
      c.connect();
      await jest.advanceTimersByTimeAsync(0);
      c.close();
      window.dispatchEvent(new Event('online'));
      await jest.advanceTimersByTimeAsync(60_000);
      expect(tickets).toEqual([0]);
    });
  });

  it('retryNow() cuts the wait short, hints included, and does nothing when not waiting', async () => {
    const c = client([busy({ 'retry-after': '30' })]);
    expect(c.retryNow()).toBe(false);
    c.connect();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(c.retryNow()).toBe(true);
    await jest.advanceTimersByTimeAsync(0);
    expect(tickets).toEqual([0, 1_000]);
    FakeSocket.last.welcome();
    expect(c.retryNow()).toBe(false);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(tickets).toHaveLength(2);
  });

  it('still stops after three 4001 in a row', async () => {
    const c = client();
    const stopped = jest.fn();
    c.on('stopped', stopped);
    c.connect();
    for (let i = 0; i < 3; i++) {
      await jest.advanceTimersByTimeAsync(0);
      FakeSocket.last.drop(CloseCode.Unauthorized);
    }
    expect(stopped).toHaveBeenCalledWith(expect.objectContaining({ code: CloseCode.Unauthorized }));
    expect(tickets).toHaveLength(3);
  });
});
