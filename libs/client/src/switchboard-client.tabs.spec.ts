import {
  type ClientMessage,
  ClientMessageType,
  CloseCode,
  type RoomJoinedData,
  ServerMessageType,
  type ServerMessage,
  type WelcomeData,
} from '@switchboard/protocol';
import { SwitchboardClient } from './switchboard-client';
import { COLLECT_MS } from './tab-share';
import type {
  BroadcastChannelFactory,
  BroadcastChannelLike,
  LockManagerLike,
  WebSocketLike,
} from './types';

/** The server's end of one connection: what the client sent, and frames the test delivers. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  readonly sent: ClientMessage[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  closedByClient = false;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientMessage);
  }
  close(): void {
    this.closedByClient = true;
  }
  welcome(data: Partial<WelcomeData> = {}): void {
    this.readyState = 1;
    this.onopen?.({});
    this.deliver(ServerMessageType.Welcome, {
      connectionId: `c${FakeSocket.all.length}`,
      user: { id: 'ann', name: 'Ann' },
      heartbeatMs: 3_600_000,
      ...data,
    });
  }
  deliver(type: string, data: unknown, extra: Partial<ServerMessage> = {}): void {
    this.onmessage?.({ data: JSON.stringify({ type, data, ts: 0, ...extra }) });
  }
  /** The requests of `type` the client sent. */
  requests(type: string): ClientMessage[] {
    return this.sent.filter((message) => message.type === type);
  }
  /** Answers the last request of `type`. */
  reply(type: string, data: unknown, replyType = type): void {
    const request = this.requests(type).pop();
    if (request?.id === undefined) {
      throw new Error(`no ${type} request was sent`);
    }
    this.deliver(replyType, data, { id: request.id });
  }
  /** Answers the last join of `room`. */
  joined(room: string, data: Partial<RoomJoinedData> = {}): void {
    const request = this.requests(ClientMessageType.RoomJoin)
      .filter((join) => (join.data as { room: string }).room === room)
      .pop();
    if (request?.id === undefined) {
      throw new Error(`no join of ${room} was sent`);
    }
    this.deliver(
      ServerMessageType.RoomJoined,
      { room, members: [], count: 1, ...data },
      { id: request.id },
    );
  }
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** One browser's Web Locks, with the tabs that hold and wait for them. */
class LockRegistry {
  private readonly held = new Map<string, { tab: FakeTab; release: () => void }>();
  private readonly queue: Array<{ name: string; tab: FakeTab; run: () => void }> = [];

  manager(tab: FakeTab): LockManagerLike {
    return {
      request: <T>(
        name: string,
        options: { ifAvailable?: boolean; signal?: AbortSignal },
        callback: (lock: unknown) => T | Promise<T>,
      ) => this.request(tab, name, options, callback),
      query: () =>
        Promise.resolve({
          held: [...this.held.keys()].map((name) => ({ name })),
          pending: this.queue.map(({ name }) => ({ name })),
        }),
    };
  }

  private request<T>(
    tab: FakeTab,
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    callback: (lock: unknown) => T | Promise<T>,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new DOMException('aborted', 'AbortError'));
        return;
      }
      const run = () => {
        let released = false;
        const release = () => {
          if (!released) {
            released = true;
            this.held.delete(name);
            this.next(name);
          }
        };
        this.held.set(name, { tab, release });
        void Promise.resolve()
          .then(() => callback({ name }))
          .then(
            (value) => {
              release();
              resolve(value);
            },
            (error: unknown) => {
              release();
              reject(error instanceof Error ? error : new Error(String(error)));
            },
          );
      };
      if (!this.held.has(name) && !this.queue.some((entry) => entry.name === name)) {
        run();
      } else if (options.ifAvailable) {
        void Promise.resolve()
          .then(() => callback(null))
          .then(resolve, (error: unknown) =>
            reject(error instanceof Error ? error : new Error(String(error))),
          );
      } else {
        const entry = { name, tab, run };
        this.queue.push(entry);
        options.signal?.addEventListener('abort', () => {
          const index = this.queue.indexOf(entry);
          if (index !== -1) {
            this.queue.splice(index, 1);
            reject(new DOMException('aborted', 'AbortError'));
          }
        });
      }
    });
  }

  private next(name: string): void {
    const index = this.queue.findIndex((entry) => entry.name === name);
    if (index !== -1) {
      this.queue.splice(index, 1)[0].run();
    }
  }

  /** The browser frees a closed tab's locks and forgets its requests. */
  free(tab: FakeTab): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].tab === tab) {
        this.queue.splice(i, 1);
      }
    }
    for (const { tab: holder, release } of [...this.held.values()]) {
      if (holder === tab) {
        release();
      }
    }
  }
}

/** BroadcastChannel between the tabs of one browser: structured clones, never to the sender. */
class ChannelBus {
  readonly channels = new Set<FakeChannel>();
}

class FakeChannel implements BroadcastChannelLike {
  onmessage: ((event: { data: unknown }) => void) | null = null;

  constructor(
    private readonly bus: ChannelBus,
    private readonly tab: FakeTab,
    readonly name: string,
  ) {
    bus.channels.add(this);
  }
  postMessage(message: unknown): void {
    if (this.tab.dead || !this.bus.channels.has(this)) {
      return;
    }
    const data = structuredClone(message);
    for (const other of this.bus.channels) {
      if (other !== this && other.name === this.name) {
        void Promise.resolve().then(() => {
          if (!other.tab.dead && this.bus.channels.has(other)) {
            other.onmessage?.({ data: structuredClone(data) });
          }
        });
      }
    }
  }
  close(): void {
    this.bus.channels.delete(this);
  }
}

/** One tab of the browser: its client, with the browser's locks and channels. */
class FakeTab {
  dead = false;
  readonly client: SwitchboardClient;
  readonly frames: ServerMessage[] = [];
  readonly events: Array<{ type: string; data: unknown }> = [];
  readonly roles: string[] = [];

  constructor(browser: FakeBrowser, user: string) {
    const bus = browser.bus;
    const tab = this; // eslint-disable-line @typescript-eslint/no-this-alias
    const Channel: BroadcastChannelFactory = class extends FakeChannel {
      constructor(name: string) {
        super(bus, tab, name);
      }
    };
    this.client = new SwitchboardClient({
      url: 'http://rt.test',
      getAccessToken: () => jwt(user),
      WebSocket: FakeSocket,
      fetch: browser.fetch,
      backoff: { random: () => 0 },
      shareAcrossTabs: true, // on by default only in a page
      locks: browser.locks.manager(this),
      BroadcastChannel: Channel,
    });
    this.client.on('message', (message) => this.frames.push(message));
    this.client.on('role', (role) => this.roles.push(role));
    this.client.onEvent('note', (data) => this.events.push({ type: 'note', data }));
    this.client.onEvent(ServerMessageType.RoomMessage, (data) =>
      this.events.push({ type: 'room.message', data }),
    );
  }

  /** The texts of the room messages and notes this tab's application saw, in order. */
  seen(): string[] {
    return this.events.map(({ data }) => (data as { text: string }).text);
  }
}

class FakeBrowser {
  readonly locks = new LockRegistry();
  readonly bus = new ChannelBus();
  readonly tabs: FakeTab[] = [];
  tickets = 0;

  /** The event streams opened, each with the way to write to it. */
  readonly streams: Array<{ url: string; write(text: string): void }> = [];

  readonly fetch = (input: string | URL | Request) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (new URL(url).pathname === '/sse') {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({ start: (c) => (controller = c) });
      this.streams.push({
        url,
        write: (text) => controller.enqueue(new TextEncoder().encode(text)),
      });
      return Promise.resolve(new Response(body, { status: 200 }));
    }
    if (!url.endsWith('/auth/ws-ticket')) {
      return Promise.reject(new Error(`unexpected request ${url}`));
    }
    this.tickets += 1;
    const n = this.tickets;
    return Promise.resolve(
      new Response(
        JSON.stringify({ ticket: `t${n}`, expiresIn: 30, url: `ws://rt.test/ws?ticket=t${n}` }),
        { status: 201 },
      ),
    );
  };

  open(user = 'ann'): FakeTab {
    const tab = new FakeTab(this, user);
    this.tabs.push(tab);
    tab.client.connect();
    return tab;
  }

  /** The tab is closed without a word: the browser frees its locks, its channels go quiet. */
  crash(tab: FakeTab): void {
    tab.dead = true;
    this.locks.free(tab);
    tab.client.close(); // stops its timers; it can no longer reach anyone
  }
}

function jwt(sub: string): string {
  const payload = Buffer.from(JSON.stringify({ sub })).toString('base64url');
  return `eyJhbGciOiJIUzI1NiJ9.${payload}.signature`;
}

const note = (text: string) => ({ text });

describe('SwitchboardClient with shareAcrossTabs', () => {
  let browser: FakeBrowser;

  beforeEach(() => {
    jest.useFakeTimers();
    FakeSocket.all = [];
    browser = new FakeBrowser();
  });
  afterEach(() => {
    browser.tabs.forEach((tab) => tab.client.close());
    jest.useRealTimers();
  });

  const settle = () => jest.advanceTimersByTimeAsync(50);

  /** Three tabs of one user, open on one connection, the first the leader. */
  async function threeTabs(): Promise<[FakeTab, FakeTab, FakeTab]> {
    const a = browser.open();
    await settle();
    expect(FakeSocket.all).toHaveLength(1);
    FakeSocket.last.welcome({ position: { epoch: 'E', offset: 0 } });
    const b = browser.open();
    const c = browser.open();
    await settle();
    expect([a, b, c].map((tab) => `${tab.client.role} ${tab.client.state}`)).toEqual([
      'leader open',
      'follower open',
      'follower open',
    ]);
    return [a, b, c];
  }

  it('holds one connection for three tabs: a leader and two followers, each open with the same API', async () => {
    const [a, b, c] = await threeTabs();
    expect(FakeSocket.all).toHaveLength(1);
    expect(browser.tickets).toBe(1);
    expect([a.client.role, b.client.role, c.client.role]).toEqual([
      'leader',
      'follower',
      'follower',
    ]);
    expect(a.roles).toEqual(['leader']);
    expect(b.roles).toEqual(['follower']);
    for (const tab of [a, b, c]) {
      expect(tab.client.transport).toBe('websocket');
      expect(tab.client.welcome?.user).toEqual({ id: 'ann', name: 'Ann' });
      expect(tab.client.position()).toEqual({ epoch: 'E', offset: 0 });
    }
    // The user's own events reach every tab, once.
    FakeSocket.last.deliver('note', note('for everyone'), { offset: 1 });
    FakeSocket.last.deliver('note', note('to all, no stream'));
    await settle();
    for (const tab of [a, b, c]) {
      expect(tab.seen()).toEqual(['for everyone', 'to all, no stream']);
      expect(tab.client.position()).toEqual({ epoch: 'E', offset: 1 });
    }
  });

  it('joins a room once for the tabs that want it, and gives its frames only to them', async () => {
    const [a, b, c] = await threeTabs();
    const socket = FakeSocket.last;
    const bJoined = b.client.join('design');
    await settle();
    expect(socket.requests(ClientMessageType.RoomJoin)).toHaveLength(1);
    socket.joined('design', {
      members: [{ id: 'ann', name: 'Ann' }],
      count: 1,
      position: { epoch: 'R', offset: 2 },
    });
    await settle();
    await expect(bJoined).resolves.toMatchObject({ room: 'design', count: 1 });
    const cJoined = await c.client.join('design');
    expect(socket.requests(ClientMessageType.RoomJoin)).toHaveLength(1);
    expect(cJoined).toEqual({
      room: 'design',
      members: [{ id: 'ann', name: 'Ann' }],
      count: 1,
      position: { epoch: 'R', offset: 2 },
    });

    socket.deliver(
      ServerMessageType.RoomMessage,
      { room: 'design', text: 'in design' },
      { room: 'design', offset: 3 },
    );
    socket.deliver(ServerMessageType.PresenceDiff, {
      room: 'design',
      joined: [{ id: 'bob', name: 'Bob' }],
      left: [],
      count: 2,
    });
    await settle();
    expect(a.seen()).toEqual([]);
    expect(b.seen()).toEqual(['in design']);
    expect(c.seen()).toEqual(['in design']);
    expect(a.frames.some((frame) => frame.type === ServerMessageType.PresenceDiff)).toBe(false);
    for (const tab of [b, c]) {
      expect(tab.client.count('design')).toBe(2);
      expect(tab.client.position('design')).toEqual({ epoch: 'R', offset: 3 });
    }
    // A tab that joins now gets the members as the leader keeps them.
    expect((await a.client.join('design')).count).toBe(2);
    expect(a.client.members('design').map((member) => member.id)).toEqual(['ann', 'bob']);

    // Leaving: the room is left on the server only when no tab wants it.
    await b.client.leave('design');
    await a.client.leave('design');
    expect(socket.requests(ClientMessageType.RoomLeave)).toHaveLength(0);
    socket.deliver(ServerMessageType.RoomMessage, { text: 'later' }, { room: 'design', offset: 4 });
    await settle();
    expect(b.seen()).toEqual(['in design']);
    expect(c.seen()).toEqual(['in design', 'later']);
    const cLeft = c.client.leave('design');
    await settle();
    expect(socket.requests(ClientMessageType.RoomLeave)).toHaveLength(1);
    socket.reply(ClientMessageType.RoomLeave, { room: 'design' }, ServerMessageType.RoomLeft);
    await expect(cLeft).resolves.toBeUndefined();
  });

  it('sends a reply, or an error, only to the tab that asked', async () => {
    const [a, b, c] = await threeTabs();
    const socket = FakeSocket.last;
    const asked = c.client.request('presence.list', { room: 'lobby' });
    const failing = expect(
      b.client.request('room.history', { room: 'secret' }),
    ).rejects.toMatchObject({ code: 'not_member' });
    await settle();
    const [list] = socket.requests('presence.list');
    const [history] = socket.requests('room.history');
    expect(list.id).not.toBe(history.id);
    socket.deliver('error', { code: 'not_member', message: 'join first' }, { id: history.id });
    socket.deliver('presence.list', { room: 'lobby', members: [], count: 0 }, { id: list.id });
    await settle();
    await expect(asked).resolves.toEqual({ room: 'lobby', members: [], count: 0 });
    await failing;
    expect(a.frames.filter((frame) => frame.id !== undefined)).toEqual([]);
    expect(b.frames.filter((frame) => frame.type === 'presence.list')).toEqual([]);
    expect(c.frames.filter((frame) => frame.type === 'error')).toEqual([]);
  });

  it('tells every tab that waited on a join the server refused', async () => {
    const [, b, c] = await threeTabs();
    const socket = FakeSocket.last;
    const refused = [b, c].map((tab) =>
      expect(tab.client.join('secret')).rejects.toMatchObject({ code: 'forbidden' }),
    );
    await settle();
    const [join] = socket.requests(ClientMessageType.RoomJoin);
    expect(socket.requests(ClientMessageType.RoomJoin)).toHaveLength(1);
    socket.deliver('error', { code: 'forbidden', message: 'no' }, { id: join.id });
    await settle();
    await Promise.all(refused);
    expect([b.client.joinedRooms, c.client.joinedRooms]).toEqual([[], []]);
  });

  it('sends the frames of a follower through the leader', async () => {
    const [, b] = await threeTabs();
    expect(b.client.message('lobby', 'from b')).toBe(true);
    expect(b.client.typing('lobby')).toBe(true);
    await settle();
    expect(FakeSocket.last.sent).toEqual([
      { type: 'room.message', data: { room: 'lobby', text: 'from b' } },
      { type: 'typing', data: { room: 'lobby' } },
    ]);
  });

  async function handover(how: 'close' | 'crash'): Promise<void> {
    const [a, b, c] = await threeTabs();
    const old = FakeSocket.last;
    const joins = [b.client.join('design'), c.client.join('design')];
    await settle();
    old.joined('design', { position: { epoch: 'R', offset: 5 } });
    await Promise.all(joins);
    old.deliver('note', note('before'), { offset: 1 });
    old.deliver(ServerMessageType.RoomMessage, { text: 'r6' }, { room: 'design', offset: 6 });
    await settle();
    const closes: string[] = [];
    c.client.on('close', ({ reason }) => closes.push(reason));
    const pending = c.client.request('room.history', { room: 'design' });
    const failed = expect(pending).rejects.toThrow('the leading tab closed');

    const closedAt = Date.now();
    if (how === 'close') {
      a.client.close();
    } else {
      browser.crash(a);
    }
    old.drop(CloseCode.GoingAway); // the server sees the old socket go
    await settle();
    await failed;
    expect(closes).toEqual(['the leading tab closed']);
    expect(c.client.state).toBe('reconnecting');
    await jest.advanceTimersByTimeAsync(COLLECT_MS);
    expect(FakeSocket.all).toHaveLength(2);
    expect(Date.now() - closedAt).toBeLessThan(2_000);
    const next = FakeSocket.last;
    const leader = b.client.role === 'leader' ? b : c;
    expect([b.client.role, c.client.role].sort()).toEqual(['follower', 'leader']);
    // The new leader recovers from where the tabs stood.
    expect(next.url).toBe(`ws://rt.test/ws?ticket=t2&since=${encodeURIComponent('E:1')}`);
    // Published while no tab was connected: recovered once, in order.
    next.welcome({ position: { epoch: 'E', offset: 3 }, recovered: true, missed: 2 });
    next.deliver('note', note('during 1'), { offset: 2 });
    next.deliver('note', note('during 2'), { offset: 3 });
    await settle();
    expect(next.requests(ClientMessageType.RoomJoin)).toEqual([
      {
        type: 'room.join',
        id: expect.any(String),
        data: { room: 'design', since: { epoch: 'R', offset: 6 } },
      },
    ]);
    next.joined('design', { position: { epoch: 'R', offset: 7 }, recovered: true, missed: 1 });
    next.deliver(ServerMessageType.RoomMessage, { text: 'r7' }, { room: 'design', offset: 7 });
    next.deliver('note', note('after'), { offset: 4 });
    await settle();
    for (const tab of [b, c]) {
      expect(tab.client.state).toBe('open');
      expect(tab.seen()).toEqual(['before', 'r6', 'during 1', 'during 2', 'r7', 'after']);
    }
    expect(leader.roles).toEqual(['follower', 'leader']);
  }

  it('hands over within 2 s when the leading tab closes, recovering every stream once', () =>
    handover('close'));

  it('hands over when the leading tab vanishes without a word', () => handover('crash'));

  it('answers a tab that stands behind the others from what the leader keeps', async () => {
    const [, b, c] = await threeTabs();
    const socket = FakeSocket.last;
    const bJoined = b.client.join('ops');
    await settle();
    socket.joined('ops', { position: { epoch: 'R', offset: 1 } });
    await bJoined;
    for (let offset = 2; offset <= 4; offset++) {
      socket.deliver(
        ServerMessageType.RoomMessage,
        { text: `m${offset}` },
        { room: 'ops', offset },
      );
    }
    await settle();
    // C asks from offset 2 (it had been in the room before, say): it gets 3 and 4 from the leader.
    const frame = {
      type: 'room.join',
      id: 'x1',
      data: { room: 'ops', since: { epoch: 'R', offset: 2 } },
    };
    (c.client as unknown as { link: { send(f: unknown): void } }).link.send(frame);
    await settle();
    expect(c.seen()).toEqual(['m3', 'm4']);
    expect(c.frames.find((f) => f.type === 'room.joined')?.data).toMatchObject({
      recovered: true,
      missed: 2,
      position: { epoch: 'R', offset: 4 },
    });
    expect(socket.requests(ClientMessageType.RoomJoin)).toHaveLength(1);
  });

  it('leaves the rooms of a follower whose tab vanished, and keeps those others want', async () => {
    const [a, b] = await threeTabs();
    const socket = FakeSocket.last;
    const joins = [b.client.join('only-b'), b.client.join('shared'), a.client.join('shared')];
    await settle();
    socket.joined('only-b');
    await settle();
    socket.joined('shared');
    await Promise.all(joins);
    browser.crash(b);
    await settle();
    expect(socket.requests(ClientMessageType.RoomLeave).map((m) => m.data)).toEqual([
      { room: 'only-b' },
    ]);
  });

  it('stops every tab on a 4009, and a follower can take over', async () => {
    const [a, b, c] = await threeTabs();
    FakeSocket.last.drop(CloseCode.Replaced, 'replaced by a newer connection');
    await settle();
    expect([a, b, c].map((tab) => tab.client.state)).toEqual(['replaced', 'replaced', 'replaced']);
    c.client.takeOver();
    await settle();
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last.welcome();
    await settle();
    expect([a, b, c].map((tab) => tab.client.state)).toEqual(['open', 'open', 'open']);
  });

  it('connects again when a new tab opens after the shared connection stopped', async () => {
    const [a, b] = await threeTabs();
    FakeSocket.last.drop(CloseCode.Replaced);
    await settle();
    expect(FakeSocket.all).toHaveLength(1);
    const d = browser.open();
    await settle();
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last.welcome();
    await settle();
    expect([a, b, d].map((tab) => tab.client.state)).toEqual(['open', 'open', 'open']);
    expect(d.client.role).toBe('follower');
  });

  it('mirrors the reconnects of the shared connection to every tab', async () => {
    const [a, b] = await threeTabs();
    const waits: number[] = [];
    b.client.on('reconnecting', ({ delayMs }) => waits.push(delayMs));
    FakeSocket.last.drop(CloseCode.GoingAway, 'reconnect in 2000 ms');
    await settle();
    expect([a.client.state, b.client.state]).toEqual(['reconnecting', 'reconnecting']);
    expect(waits).toEqual([2_000]);
    expect(b.client.retryNow()).toBe(true);
    await settle();
    expect(FakeSocket.all).toHaveLength(2);
  });

  it('takes over on SSE when the leader had fallen back to it', async () => {
    const a = browser.open();
    await settle();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    FakeSocket.last.drop(CloseCode.Abnormal);
    await settle();
    const welcome = (n: number) =>
      `event: welcome\ndata: ${JSON.stringify({
        type: 'welcome',
        data: { connectionId: `s${n}`, user: { id: 'ann', name: 'Ann' }, heartbeatMs: 60_000 },
        ts: 0,
      })}\n\n`;
    browser.streams[0].write(welcome(1));
    const b = browser.open();
    await settle();
    expect([a.client.transport, b.client.transport]).toEqual(['sse', 'sse']);
    browser.crash(a);
    await jest.advanceTimersByTimeAsync(COLLECT_MS);
    expect(FakeSocket.all).toHaveLength(2); // no WebSocket tried by the new leader
    expect(browser.streams).toHaveLength(2);
    browser.streams[1].write(welcome(2));
    await settle();
    expect([b.client.role, b.client.state, b.client.transport]).toEqual(['leader', 'open', 'sse']);
  });

  it('keeps the tabs of different users apart', async () => {
    browser.open('ann');
    await settle();
    browser.open('bob');
    await settle();
    expect(FakeSocket.all).toHaveLength(2);
    expect(browser.tabs.map((tab) => tab.client.role)).toEqual(['leader', 'leader']);
  });

  it('lets a follower close without disturbing the others, and is alone once closed', async () => {
    const [a, b, c] = await threeTabs();
    c.client.close();
    await settle();
    expect(c.client.state).toBe('closed');
    expect(c.client.role).toBe('alone');
    expect([a.client.state, b.client.state]).toEqual(['open', 'open']);
    FakeSocket.last.deliver('note', note('still here'));
    await settle();
    expect(b.seen()).toEqual(['still here']);
    expect(c.seen()).toEqual([]);
  });
});
