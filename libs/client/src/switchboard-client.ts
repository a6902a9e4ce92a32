import {
  ClientMessageType,
  type ErrorData,
  type PresenceCountData,
  type PresenceDiffData,
  type PresenceListData,
  type RoomData,
  type RoomHistoryData,
  type RoomJoinedData,
  type ServerMessage,
  ServerMessageType,
  type SessionExpiryData,
  type StreamPosition,
  type StreamRecovery,
  type TypingData,
  type UserInfo,
  type WelcomeData,
} from '@switchboard/protocol';
import { Connection, type ConnectionEnv, usableTransports } from './connection';
import {
  type CloseInfo,
  type Link,
  OWN_STREAM,
  type StopInfo,
  type TabRole,
  type TabStanding,
} from './link';
import { RoomPresence } from './room-presence';
import { type ShareEnv, type ShareHandler, TabShare } from './tab-share';
import type { TransportName } from './transports/transport';
import {
  type BroadcastChannelFactory,
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type LockManagerLike,
  type ReconnectingInfo,
  SwitchboardError,
  type WebSocketFactory,
} from './types';

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

interface Pending {
  resolve(data: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A request waiting for the connection to open, until `deadline` (epoch ms). */
interface Waiter {
  deadline: number;
  settle(error: Error | null): void;
}

type Listeners = { [K in keyof ClientEvents]: Set<ClientEvents[K]> };

/**
 * A Switchboard connection that keeps itself alive: it trades an access token for a ticket,
 * connects (over a WebSocket, or Server-Sent Events where WebSockets cannot pass), answers every
 * close code as docs/sdk.md says (reconnect with jittered backoff, new ticket, fresh token, wait,
 * or stop), detects dead links with application pings, and re-joins its rooms after a reconnect.
 * It keeps the members of every room it joined (`members`, `count`, the `presence` event). In a
 * browser, the tabs of one user share one connection (`shareAcrossTabs`), each with this same API.
 *
 * Without `getAccessToken`, the browser's cookies authenticate it (a cookie session: the server's
 * `AUTH_COOKIE`, or a guest's from `signInAsGuest`); it then stops `signed-out` at once when the
 * browser is not signed in.
 *
 * @example
 * const client = new SwitchboardClient({ url: 'https://rt.example.com', getAccessToken: () => auth.token() });
 * client.onEvent('invoice.paid', (data) => show(data));
 * client.connect();
 * await client.join('team-42:general');
 */
export class SwitchboardClient {
  state: ConnectionState = 'idle';
  welcome: WelcomeData | null = null;
  /** The transport the connection is open over (`null` while not open). */
  transport: TransportName | null = null;
  /**
   * `leader`: this tab holds the connection and shares it; `follower`: it uses another tab's;
   * `alone`: it holds its own (tab sharing off, unavailable, or not connected).
   */
  role: TabRole = 'alone';

  private readonly link: Link;
  private readonly rooms = new Set<string>();
  /** The last position seen of each stream: the user's own (OWN_STREAM) and each joined room's. */
  private readonly positions = new Map<string, StreamPosition>();
  /** Each joined room's presence, from its last `room.joined` reply on. */
  private readonly roomPresence = new Map<string, RoomPresence>();
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<Waiter>();
  /** Why the last connection attempt failed, until one succeeds. */
  private lastFailure: string | null = null;
  /** When the connection's next attempt comes (epoch ms), while it waits. */
  private retryAt = 0;
  private readonly eventHandlers = new Map<
    string,
    Set<(data: unknown, message: ServerMessage) => void>
  >();
  private readonly listeners: Listeners = {
    state: new Set(),
    welcome: new Set(),
    message: new Set(),
    error: new Set(),
    close: new Set(),
    recovered: new Set(),
    reset: new Set(),
    stopped: new Set(),
    reconnecting: new Set(),
    presence: new Set(),
    typing: new Set(),
    transport: new Set(),
    role: new Set(),
  };
  private seq = 0;
  /** What the connection (this tab's, or the leading tab's) tells this client. */
  private readonly handler: ShareHandler = {
    state: (state) => {
      // A tab that takes over from a leader that closed connects anew: still a reconnect here.
      if (!(state === 'connecting' && this.state === 'reconnecting')) {
        this.setState(state);
      }
    },
    frame: (message) => this.receive(message),
    closed: (close) => this.closed(close),
    reconnecting: (info, failure) => this.reconnecting(info, failure),
    stopped: (stop) => this.stop(stop),
    transport: (transport) => {
      if (this.transport !== transport) {
        this.transport = transport;
        this.emit('transport', transport);
      }
    },
    role: (role) => {
      if (this.role !== role) {
        this.role = role;
        this.emit('role', role);
      }
    },
    standing: () => this.standing(),
    active: () =>
      this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting',
  };

  constructor(private readonly options: ClientOptions) {
    const globals = globalThis as { WebSocket?: WebSocketFactory; fetch?: typeof fetch };
    const fetchImpl = options.fetch ?? globals.fetch;
    if (!fetchImpl) {
      throw new Error(
        'SwitchboardClient needs WebSocket and fetch: pass them in options (e.g. WebSocket from "ws")',
      );
    }
    const env: ConnectionEnv = {
      WebSocket: options.WebSocket ?? globals.WebSocket,
      fetch: fetchImpl.bind(globalThis),
    };
    usableTransports(options, env); // throws on transports it cannot use
    const share = shareEnv(options);
    this.link =
      share === null
        ? new Connection(options, env, this.handler, () => this.position())
        : new TabShare(options, env, share, this.handler);
  }

  /** Starts connecting (and keeps the connection up until `close()` or a stopping close code). */
  connect(): void {
    if (this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting') {
      return;
    }
    this.lastFailure = null;
    this.setState('connecting');
    this.link.connect();
  }

  /**
   * While waiting to reconnect: cancels the wait and tries at once (a user's "retry now"), server
   * hints included. Returns false, doing nothing, when the client is not waiting.
   */
  retryNow(): boolean {
    return this.state === 'reconnecting' && this.link.retryNow();
  }

  /** After `replaced`: connect again, replacing the other tab or device in turn. */
  takeOver(): void {
    this.connect();
  }

  /**
   * Closes for good with 1000. With `shareAcrossTabs`, this tab leaves the shared connection: a
   * follower's rooms are left (unless other tabs want them); a leader's connection closes and
   * another tab takes over.
   */
  close(): void {
    this.link.close();
  }

  on<K extends keyof ClientEvents>(event: K, handler: ClientEvents[K]): () => void {
    (this.listeners[event] as Set<ClientEvents[K]>).add(handler);
    return () => (this.listeners[event] as Set<ClientEvents[K]>).delete(handler);
  }

  /** Subscribes to one server message type: an application event or a protocol one (`room.message`). */
  onEvent<T = unknown>(
    type: string,
    handler: (data: T, message: ServerMessage<T>) => void,
  ): () => void {
    let handlers = this.eventHandlers.get(type);
    if (handlers === undefined) {
      handlers = new Set();
      this.eventHandlers.set(type, handlers);
    }
    const wrapped = handler as (data: unknown, message: ServerMessage) => void;
    handlers.add(wrapped);
    return () => handlers?.delete(wrapped);
  }

  /** Sends a message without waiting for an answer; false when not connected. */
  send(type: string, data?: object): boolean {
    if (this.state !== 'open') {
      return false;
    }
    this.link.send(data === undefined ? { type } : { type, data });
    return true;
  }

  /**
   * Sends a message with an id and resolves with the reply's data; rejects on an `error` reply.
   * While the client is connecting (or reconnecting), the request waits for the connection, so
   * `connect()` then `await join(room)` works. It fails with the reason the connection failed
   * (`connection refused: too many connection attempts (4029, retry after 12 s)`) as soon as the
   * next attempt would come after `requestTimeoutMs`, or when the client stops.
   */
  request<T = unknown>(type: string, data?: object): Promise<T> {
    if (this.state === 'connecting' || this.state === 'reconnecting') {
      return this.opened().then(() => this.request<T>(type, data));
    }
    if (this.state !== 'open') {
      return Promise.reject(new Error(`not connected (state: ${this.state})`));
    }
    const id = `r${++this.seq}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${type} timed out`));
      }, this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.link.send(data === undefined ? { type, id } : { type, id, data });
    });
  }

  /**
   * Joins a room; it is joined again after every reconnect until `leave`, recovering what was
   * published meanwhile (`recovered`, or `reset` when the server could not).
   */
  async join(room: string): Promise<RoomJoinedData> {
    const since = this.positions.get(room);
    // An unknown epoch cannot be recovered: join afresh, and `track` reports the reset.
    const joined = await this.request<RoomJoinedData>(
      ClientMessageType.RoomJoin,
      since?.epoch ? { room, since } : { room },
    );
    this.rooms.add(room);
    this.track(room, joined, since !== undefined);
    return joined;
  }

  /** Leaves a room; the client forgets its position and its members at once. */
  async leave(room: string): Promise<void> {
    this.rooms.delete(room);
    this.positions.delete(room);
    this.roomPresence.delete(room);
    await this.request(ClientMessageType.RoomLeave, { room });
  }

  /**
   * A room's last messages (at most `limit`, 1–100, default 50), or those before offset `before`,
   * oldest first, as they were sent. Members only.
   */
  history(
    room: string,
    options: { limit?: number; before?: number } = {},
  ): Promise<RoomHistoryData> {
    return this.request(ClientMessageType.RoomHistory, { room, ...options });
  }

  /** Where the client stands in a room's stream (or, with no room, its own), if it tracks it. */
  position(room?: string): StreamPosition | undefined {
    const position = this.positions.get(room ?? OWN_STREAM);
    return position && { ...position };
  }

  /** Sends a chat message; every member, this client included, receives `room.message`. */
  message(room: string, text: string): boolean {
    return this.send(ClientMessageType.RoomMessage, { room, text });
  }

  /**
   * Tells the room's other members that this user is typing (the server passes one notice per
   * user and room every 2 s); they get the `typing` event. False while not open.
   */
  typing(room: string): boolean {
    return this.send(ClientMessageType.Typing, { room });
  }

  /**
   * The members of a joined room that the client knows, in user-id order: all of them in rooms of
   * up to 100 members (`MAX_LISTED_MEMBERS`), otherwise the first page of the last `room.joined`
   * plus the users the diffs since named as present (`presence()` pages through the rest). Empty
   * for a room the client has not joined. While the client reconnects it returns what it last
   * knew; the rejoin's `room.joined` replaces it.
   */
  members(room: string): UserInfo[] {
    return this.roomPresence.get(room)?.members() ?? [];
  }

  /** How many users are in a joined room, cluster-wide; undefined for a room not joined. */
  count(room: string): number | undefined {
    return this.roomPresence.get(room)?.count;
  }

  /**
   * One page of a room's members from the server (`presence.list`), in user-id order: up to
   * `limit` (1–500, default 100) members whose ids come after `after`. Pass a page's `next` as
   * `after` for the following page; `next` is absent on the last one. Paging while members come
   * and go never repeats a member, and never misses one that stayed throughout. Members only.
   */
  presence(
    room: string,
    options: { after?: string; limit?: number } = {},
  ): Promise<PresenceListData> {
    const { after, limit } = options;
    return this.request(ClientMessageType.PresenceList, {
      room,
      ...(after === undefined ? {} : { after }),
      ...(limit === undefined ? {} : { limit }),
    });
  }

  /** Extends the session with a fresh access token of the same user. */
  refresh(token: string): Promise<SessionExpiryData> {
    return this.request(ClientMessageType.SessionRefresh, { token });
  }

  get joinedRooms(): string[] {
    return [...this.rooms];
  }

  private receive(message: ServerMessage): void {
    if (message.offset !== undefined) {
      this.advance(message);
    }
    if (message.type === ServerMessageType.Welcome) {
      this.welcome = message.data as WelcomeData;
      this.track(OWN_STREAM, this.welcome, this.positions.has(OWN_STREAM));
      this.lastFailure = null;
      this.setState('open');
      this.settleWaiters(null);
      this.emit('welcome', this.welcome);
      void this.rejoin();
    }
    const pending = message.id === undefined ? undefined : this.pending.get(message.id);
    this.keepPresence(message);
    if (pending !== undefined && message.id !== undefined) {
      this.pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.type === ServerMessageType.Error) {
        pending.reject(new SwitchboardError(message.data as ErrorData));
      } else {
        pending.resolve(message.data);
      }
    } else if (message.type === ServerMessageType.Error) {
      this.emit('error', message.data as ErrorData);
    }
    this.emit('message', message);
    this.eventHandlers.get(message.type)?.forEach((handler) => handler(message.data, message));
  }

  private closed({ code, reason, failure }: CloseInfo): void {
    for (const [room, presence] of this.roomPresence) {
      if (this.rooms.has(room)) {
        presence.live = false; // until the rejoin's snapshot
      } else {
        this.roomPresence.delete(room); // the server joined this socket to it: not rejoined here
      }
    }
    this.rejectPending(failure);
    this.emit('close', { code, reason });
  }

  /**
   * The connection waits `info.delayMs` before its next attempt. A request waiting for it fails
   * now, with why the last attempt failed, if that attempt would come after the request's deadline.
   */
  private reconnecting(info: ReconnectingInfo, failure: string | null): void {
    this.lastFailure = failure;
    this.retryAt = Date.now() + info.delayMs;
    for (const waiter of [...this.waiters]) {
      if (waiter.deadline < this.retryAt) {
        waiter.settle(new Error(this.lastFailure ?? info.reason));
      }
    }
    this.emit('reconnecting', info);
  }

  private stop({ state, code, message }: StopInfo): void {
    this.rejectPending(message);
    this.setState(state);
    this.settleWaiters(new Error(`not connected (state: ${state}): ${message}`));
    this.emit('stopped', { state, code, message });
  }

  /** Where this tab stands in its streams, for the tab that connects on its behalf. */
  private standing(): TabStanding {
    return {
      own: this.position(),
      rooms: [...this.rooms].map((room) => {
        const since = this.positions.get(room);
        return since === undefined ? { room } : { room, since: { ...since } };
      }),
    };
  }

  /**
   * Takes in a `welcome` or `room.joined`: what its stream's recovery found. Recovered, the missed
   * publications follow and move the position on; otherwise the stream starts from the server's.
   */
  private track(stream: string, answer: Partial<StreamRecovery>, asked: boolean): void {
    if (answer.position === undefined) {
      this.positions.delete(stream); // history is off on the server
      return;
    }
    const room = stream === OWN_STREAM ? undefined : stream;
    if (asked && answer.recovered === true) {
      this.emit('recovered', { room, missed: answer.missed ?? 0 });
      return;
    }
    this.positions.set(stream, { ...answer.position });
    if (asked) {
      this.emit('reset', { room });
    }
  }

  /**
   * Moves a stream's position on to the publication's offset. An offset that goes back means the
   * stream started again on a new epoch while the socket stayed open (the server's Redis lost its
   * data): the epoch is then unknown, so the next recovery reports `reset`.
   */
  private advance(message: ServerMessage): void {
    const position = this.positions.get(message.room ?? OWN_STREAM);
    if (position === undefined) {
      return;
    }
    if (message.offset! <= position.offset) {
      position.epoch = '';
    }
    position.offset = message.offset!;
  }

  /**
   * Keeps the presence of the joined rooms. A `room.joined` (the reply to `join`, or a join the
   * host application made for this socket) replaces what the client knew of the room. A diff,
   * count or typing notice counts only once the room's `room.joined` has arrived on this socket:
   * one that comes before it is older than the snapshot.
   */
  private keepPresence(message: ServerMessage): void {
    if (message.type === ServerMessageType.RoomJoined) {
      const joined = message.data as RoomJoinedData;
      const presence = new RoomPresence(joined);
      this.roomPresence.set(joined.room, presence);
      this.emitPresence(joined.room, presence, true);
    } else if (message.type === ServerMessageType.RoomLeft) {
      this.roomPresence.delete((message.data as RoomData).room);
    } else if (message.type === ServerMessageType.PresenceDiff) {
      const diff = message.data as PresenceDiffData;
      const presence = this.livePresence(diff.room);
      if (presence !== undefined) {
        presence.apply(diff);
        this.emitPresence(diff.room, presence, false, diff.joined, diff.left);
      }
    } else if (message.type === ServerMessageType.PresenceCount) {
      const { room, count } = message.data as PresenceCountData;
      const presence = this.livePresence(room);
      if (presence !== undefined) {
        presence.count = count;
        this.emitPresence(room, presence, false);
      }
    } else if (message.type === ServerMessageType.Typing) {
      const { room, users } = message.data as TypingData;
      const own = this.welcome?.user.id;
      const others = users.filter((user) => user.id !== own);
      if (others.length > 0 && this.livePresence(room) !== undefined) {
        this.emit('typing', { room, users: others });
      }
    }
  }

  private livePresence(room: string): RoomPresence | undefined {
    const presence = this.roomPresence.get(room);
    return presence?.live ? presence : undefined;
  }

  private emitPresence(
    room: string,
    presence: RoomPresence,
    snapshot: boolean,
    joined: UserInfo[] = [],
    left: string[] = [],
  ): void {
    if (this.listeners.presence.size === 0) {
      return;
    }
    const members = presence.members();
    this.emit('presence', { room, members, count: presence.count, snapshot, joined, left });
  }

  private async rejoin(): Promise<void> {
    for (const room of [...this.rooms]) {
      try {
        await this.join(room);
      } catch (error) {
        if (error instanceof SwitchboardError) {
          this.rooms.delete(room);
          this.roomPresence.delete(room);
          this.emit('error', error.data);
        }
        // Otherwise the socket closed meanwhile: the next welcome joins again.
      }
    }
  }

  private rejectPending(message: string): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(message));
      this.pending.delete(id);
    }
  }

  /**
   * Resolves when the client is next open. Rejects when it stops, when an attempt fails and the
   * next one would come too late, or after `requestTimeoutMs`, saying why the last attempt failed.
   */
  private opened(): Promise<void> {
    const timeoutMs = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        deadline: Date.now() + timeoutMs,
        settle: (error) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          if (error === null) {
            resolve();
          } else {
            reject(error);
          }
        },
      };
      const timer = setTimeout(() => {
        const why = this.lastFailure === null ? '' : `: ${this.lastFailure}`;
        waiter.settle(new Error(`not connected within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private settleWaiters(error: Error | null): void {
    for (const waiter of [...this.waiters]) {
      waiter.settle(error);
    }
  }

  private setState(state: ConnectionState): void {
    if (this.state !== state) {
      this.state = state;
      this.emit('state', state);
    }
  }

  private emit<K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const handler of this.listeners[event]) {
      (handler as (...a: Parameters<ClientEvents[K]>) => void)(...args);
    }
  }
}

/**
 * What tab sharing needs, when it is on: asked for (`shareAcrossTabs`), or by default in a page
 * (not in Node, where every client is a process of its own) with Web Locks and BroadcastChannel.
 */
function shareEnv(options: ClientOptions): ShareEnv | null {
  const globals = globalThis as unknown as {
    navigator?: { locks?: LockManagerLike };
    BroadcastChannel?: BroadcastChannelFactory;
    document?: unknown;
  };
  const locks = options.locks ?? globals.navigator?.locks;
  const BroadcastChannelImpl = options.BroadcastChannel ?? globals.BroadcastChannel;
  const wanted = options.shareAcrossTabs ?? globals.document !== undefined;
  return wanted && locks !== undefined && BroadcastChannelImpl !== undefined
    ? { locks, BroadcastChannel: BroadcastChannelImpl }
    : null;
}
