import {
  ClientMessageType,
  closeAction,
  CloseCode,
  type ErrorData,
  type PresenceCountData,
  type PresenceDiffData,
  type PresenceListData,
  retryAfterSeconds,
  type RoomData,
  type RoomHistoryData,
  type RoomJoinedData,
  type ServerMessage,
  ServerMessageType,
  type SessionExpiryData,
  type StreamPosition,
  type StreamRecovery,
  type TicketResponse,
  type TypingData,
  type UserInfo,
  type WelcomeData,
} from '@switchboard/protocol';
import { Backoff } from './backoff';
import { describeClose } from './close-messages';
import { reconnectInMs, retryAfterMs, TICKET_MARGIN_MS } from './retry-hints';
import { RoomPresence } from './room-presence';
import {
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type ReconnectingInfo,
  SwitchboardError,
  type WebSocketFactory,
  type WebSocketLike,
} from './types';

/** 4001 closes in a row after which the client stops: the tickets are refused for a reason. */
const MAX_TICKET_FAILURES = 3;
const DEFAULT_PONG_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** How long a connection must stay open before the backoff starts over. */
const DEFAULT_RESET_AFTER_MS = 10_000;
/** The most jitter added on top of a server's retry hint (at most a tenth of the hint). */
const HINT_JITTER_MS = 1_000;
/** Back `online`, the next attempt comes within this long (jittered: a whole office comes back). */
const ONLINE_JITTER_MS = 1_000;
/** The close code this client uses when it abandons a dead link. */
const DEAD_LINK = 4000;
/** The key of the user's own stream among the streams the client tracks (rooms use their name). */
const OWN_STREAM = '\u0000user';

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

/** An upgrade the server answered with an HTTP status instead of `101` (seen only in Node's `ws`). */
interface UpgradeRefusal {
  status: number;
  hintMs: number | null;
}

/** What `ws` adds to the WebSocket API; the browser's WebSocket has none of it. */
interface NodeWebSocket {
  on(
    event: 'unexpected-response',
    listener: (request: unknown, response: UpgradeResponse) => void,
  ): unknown;
  terminate(): void;
}

interface UpgradeResponse {
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
}

/** The window's `online` event, where there is a window. */
interface OnlineEvents {
  addEventListener?(type: 'online', listener: () => void): void;
  removeEventListener?(type: 'online', listener: () => void): void;
}

/**
 * A Switchboard connection that keeps itself alive: it trades an access token for a ticket,
 * connects, answers every close code as docs/sdk.md says (reconnect with jittered backoff, new
 * ticket, fresh token, wait, or stop), detects dead links with application pings, and re-joins
 * its rooms after a reconnect. It keeps the members of every room it joined (`members`, `count`,
 * the `presence` event).
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

  private readonly WebSocketImpl: WebSocketFactory;
  private readonly fetchImpl: typeof fetch;
  private readonly backoff: Backoff;
  private readonly rooms = new Set<string>();
  /** The last position seen of each stream: the user's own (OWN_STREAM) and each joined room's. */
  private readonly positions = new Map<string, StreamPosition>();
  /** Each joined room's presence, from its last `room.joined` reply on. */
  private readonly roomPresence = new Map<string, RoomPresence>();
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<Waiter>();
  /** Why the last connection attempt failed, until one succeeds. */
  private lastFailure: string | null = null;
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
  };
  private socket: WebSocketLike | null = null;
  private ticketFailures = 0;
  private wantFreshToken = false;
  private stopped = false;
  private seq = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  /** Resets the backoff once the connection has stayed open long enough. */
  private stableTimer: ReturnType<typeof setTimeout> | null = null;
  /** Retries since the connection was last stable (the `reconnecting` event's `attempt`). */
  private attempt = 0;
  /** When the pending retry fires (epoch ms), and the earliest a server hint allows one. */
  private retryAt = 0;
  private notBefore = 0;
  /** The last ticket while it may still be redeemed: an upgrade refused before `open` keeps it. */
  private ticket: { url: string; validUntil: number } | null = null;
  private socketOpened = false;
  private refusal: UpgradeRefusal | null = null;
  private readonly random: () => number;
  private readonly onOnline = (): void => this.online();

  constructor(private readonly options: ClientOptions) {
    const globals = globalThis as { WebSocket?: WebSocketFactory; fetch?: typeof fetch };
    const WebSocketImpl = options.WebSocket ?? globals.WebSocket;
    const fetchImpl = options.fetch ?? globals.fetch;
    if (!WebSocketImpl || !fetchImpl) {
      throw new Error(
        'SwitchboardClient needs WebSocket and fetch: pass them in options (e.g. WebSocket from "ws")',
      );
    }
    this.WebSocketImpl = WebSocketImpl;
    this.fetchImpl = fetchImpl.bind(globalThis);
    this.backoff = new Backoff(options.backoff);
    this.random = options.backoff?.random ?? Math.random;
  }

  /** Starts connecting (and keeps the connection up until `close()` or a stopping close code). */
  connect(): void {
    if (this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting') {
      return;
    }
    this.stopped = false;
    this.ticketFailures = 0;
    this.lastFailure = null;
    this.backoff.reset();
    this.attempt = 0;
    this.notBefore = 0;
    this.ticket = null;
    (globalThis as OnlineEvents).addEventListener?.('online', this.onOnline);
    this.setState('connecting');
    void this.open();
  }

  /**
   * While waiting to reconnect: cancels the wait and tries at once (a user's "retry now"), server
   * hints included. Returns false, doing nothing, when the client is not waiting.
   */
  retryNow(): boolean {
    if (this.reconnectTimer === null || this.stopped) {
      return false;
    }
    this.clearReconnect();
    this.notBefore = 0;
    void this.open();
    return true;
  }

  /** After `replaced`: connect again, replacing the other tab or device in turn. */
  takeOver(): void {
    this.connect();
  }

  /** Closes for good with 1000. */
  close(): void {
    this.stop('closed', 'closed by the application');
    this.socket?.close(CloseCode.Normal, 'bye');
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
    if (this.state !== 'open' || this.socket === null) {
      return false;
    }
    this.socket.send(JSON.stringify(data === undefined ? { type } : { type, data }));
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
    if (this.state !== 'open' || this.socket === null) {
      return Promise.reject(new Error(`not connected (state: ${this.state})`));
    }
    const id = `r${++this.seq}`;
    const socket = this.socket;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${type} timed out`));
      }, this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify(data === undefined ? { type, id } : { type, id, data }));
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

  private async open(): Promise<void> {
    let url: string | null;
    if (this.ticket !== null && Date.now() < this.ticket.validUntil) {
      url = this.ticket.url; // the last upgrade was refused before open: its ticket is unspent
    } else {
      this.ticket = null;
      try {
        url = await this.ticketUrl();
      } catch (error) {
        // The network or the server failed: retried with backoff, like a dropped socket.
        this.retry(
          'ticket failed',
          `ticket request failed: ${error instanceof Error ? error.message : String(error)}`,
          null,
        );
        return;
      }
    }
    if (url === null || this.stopped) {
      return;
    }
    const socket = new this.WebSocketImpl(secureIfPageIs(url));
    this.socket = socket;
    this.socketOpened = false;
    this.refusal = null;
    socket.onopen = () => {
      if (socket === this.socket) {
        this.socketOpened = true;
      }
    };
    this.watchRefusal(socket);
    socket.onmessage = (event) => this.receive(socket, event.data);
    socket.onclose = (event) => this.closed(socket, event.code, event.reason);
    socket.onerror = () => undefined; // a close event always follows
  }

  /** A ticket URL, or null when the client has stopped or scheduled a retry itself. */
  private async ticketUrl(): Promise<string | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = await this.options.getAccessToken({ refresh: this.wantFreshToken });
      this.wantFreshToken = false;
      const response = await this.fetchImpl(
        `${this.options.url.replace(/\/$/, '')}/auth/ws-ticket`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        },
      );
      if (response.status === 201) {
        const { url, expiresIn } = (await response.json()) as TicketResponse;
        const own = this.positions.get(OWN_STREAM);
        // Not a secret: where the client stands in its own stream, to get what it missed.
        const full = own?.epoch
          ? `${url}&since=${encodeURIComponent(`${own.epoch}:${own.offset}`)}`
          : url;
        this.ticket = { url: full, validUntil: Date.now() + expiresIn * 1000 - TICKET_MARGIN_MS };
        return full;
      }
      if (response.status === 401 && attempt === 0) {
        this.wantFreshToken = true;
        continue;
      }
      if (response.status === 401) {
        this.stop('signed-out', 'the access token was refused');
        return null;
      }
      if (response.status === 403) {
        // Retrying cannot help (the page's origin is not allowed): stop, and say why.
        this.stop('closed', await refusalMessage(response));
        return null;
      }
      const hintMs = retryAfterMs(response.headers.get('retry-after'), await jsonBody(response));
      this.retry(
        `ticket ${response.status}`,
        hintMs === null
          ? `ticket request refused (${response.status})`
          : `ticket request refused (${response.status}, retry after ${Math.ceil(hintMs / 1000)} s)`,
        hintMs,
      );
      return null;
    }
    return null;
  }

  private receive(socket: WebSocketLike, raw: unknown): void {
    if (socket !== this.socket) {
      return;
    }
    let message: ServerMessage;
    try {
      message = JSON.parse(String(raw)) as ServerMessage;
    } catch {
      return; // The server only sends JSON; anything else is not ours to interpret.
    }
    if (message.offset !== undefined) {
      this.advance(message);
    }
    if (message.type === ServerMessageType.Welcome) {
      this.welcome = message.data as WelcomeData;
      this.track(OWN_STREAM, this.welcome, this.positions.has(OWN_STREAM));
      this.ticketFailures = 0;
      this.ticket = null;
      this.startStableTimer();
      this.startPinging();
      this.lastFailure = null;
      this.setState('open');
      this.settleWaiters(null);
      this.emit('welcome', this.welcome);
      void this.rejoin();
    } else if (message.type === ServerMessageType.Pong && this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
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

  private closed(socket: WebSocketLike, code: number, reason: string): void {
    if (socket !== this.socket) {
      return;
    }
    const failure = describeClose(code, reason, this.state === 'open');
    // A browser sees an upgrade refused with an HTTP status (503: draining, overloaded) only as a
    // 1006 before open; such a refusal leaves the ticket unspent, so the next attempt reuses it.
    const upgradeFailed = code === CloseCode.Abnormal && !this.socketOpened;
    const refusal = this.refusal;
    this.refusal = null;
    if (!upgradeFailed) {
      this.ticket = null;
    }
    this.socket = null;
    for (const [room, presence] of this.roomPresence) {
      if (this.rooms.has(room)) {
        presence.live = false; // until the rejoin's snapshot
      } else {
        this.roomPresence.delete(room); // the server joined this socket to it: not rejoined here
      }
    }
    this.clearStableTimer();
    this.stopPinging();
    this.rejectPending(failure);
    this.emit('close', { code, reason });
    if (this.stopped) {
      return;
    }
    const action = closeAction(code);
    switch (action) {
      case 'none':
        this.stop('closed', `closed by the server: ${reason || code}`, code);
        return;
      case 'reconnect':
        if (refusal !== null) {
          this.retry(
            `upgrade ${refusal.status}`,
            refusal.hintMs === null
              ? `connection refused: upgrade refused (${refusal.status})`
              : `connection refused: upgrade refused (${refusal.status}, retry after ${Math.ceil(refusal.hintMs / 1000)} s)`,
            refusal.hintMs,
          );
        } else if (upgradeFailed) {
          this.retry('upgrade failed', failure, null);
        } else {
          this.retry(closeReason(code, reason), failure, reconnectInMs(reason));
        }
        return;
      case 'new-ticket':
        this.ticketFailures += 1;
        if (this.ticketFailures >= MAX_TICKET_FAILURES) {
          this.stop('closed', `tickets refused ${MAX_TICKET_FAILURES} times in a row (4001)`, code);
        } else {
          this.retry(closeReason(code, reason), failure, null);
        }
        return;
      case 'refresh-token':
        this.wantFreshToken = true;
        this.scheduleReconnect(0, failure, closeReason(code, reason));
        return;
      case 'signed-out':
        this.stop('signed-out', reason || 'session revoked', code);
        return;
      case 'replaced':
        this.stop('replaced', reason || 'replaced by a newer connection', code);
        return;
      case 'wait': {
        const seconds = retryAfterSeconds(reason);
        this.retry(closeReason(code, reason), failure, seconds === null ? null : seconds * 1000);
        return;
      }
      default: {
        const unreachable: never = action;
        throw new Error(`unknown close action ${String(unreachable)}`);
      }
    }
  }

  /**
   * Tries again after the server's hint (`hintMs`, plus a little jitter) when it gave one, else
   * after the next backoff delay. Every unhinted failure widens the backoff: the sequence (ticket,
   * upgrade, welcome, rejoin) backs off as a whole until a connection stays up. A hint does not
   * widen it: the server sized it to its backlog, and a client whose window had widened on hinted
   * refusals sat out up to 30 s after the server had room again (the storm's tail, measured in
   * docs/BENCHMARKS.md).
   */
  private retry(reason: string, failure: string, hintMs: number | null): void {
    this.notBefore = hintMs === null ? 0 : Date.now() + hintMs;
    const delayMs =
      hintMs === null
        ? this.backoff.next()
        : hintMs + Math.floor(this.random() * Math.min(HINT_JITTER_MS, hintMs / 10));
    this.scheduleReconnect(delayMs, failure, reason);
  }

  /**
   * Tries again in `delayMs`. `failure` says why the last attempt failed: a request waiting for the
   * connection fails with it now if the next attempt would come after the request's deadline.
   */
  private scheduleReconnect(delayMs: number, failure: string, reason: string): void {
    if (this.stopped) {
      return;
    }
    this.lastFailure = failure;
    this.attempt += 1;
    this.setState('reconnecting');
    this.wait(delayMs, reason);
  }

  private wait(delayMs: number, reason: string): void {
    this.retryAt = Date.now() + delayMs;
    for (const waiter of [...this.waiters]) {
      if (waiter.deadline < this.retryAt) {
        waiter.settle(new Error(this.lastFailure ?? reason));
      }
    }
    this.clearReconnect();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delayMs);
    const info: ReconnectingInfo = { attempt: this.attempt, delayMs, reason };
    this.emit('reconnecting', info);
  }

  /**
   * The browser is back online: the network was the trouble, so waiting out the backoff only
   * delays the user. Tries again soon (jittered), but not before a server's hint allows.
   */
  private online(): void {
    if (this.reconnectTimer === null || this.stopped) {
      return;
    }
    const now = Date.now();
    const delayMs = Math.max(Math.floor(this.random() * ONLINE_JITTER_MS), this.notBefore - now);
    if (now + delayMs < this.retryAt) {
      this.wait(delayMs, 'online');
    }
  }

  private startStableTimer(): void {
    this.clearStableTimer();
    this.stableTimer = setTimeout(() => {
      this.stableTimer = null;
      this.backoff.reset();
      this.attempt = 0;
    }, this.options.backoff?.resetAfterMs ?? DEFAULT_RESET_AFTER_MS);
  }

  private clearStableTimer(): void {
    if (this.stableTimer !== null) {
      clearTimeout(this.stableTimer);
      this.stableTimer = null;
    }
  }

  /**
   * Node's `ws` reports an upgrade answered with an HTTP status through `unexpected-response`,
   * where the `Retry-After` can be read; the socket is then closed as a 1006 before open, as a
   * browser's would be.
   */
  private watchRefusal(socket: WebSocketLike): void {
    const node = socket as unknown as Partial<NodeWebSocket>;
    if (typeof node.on !== 'function' || typeof node.terminate !== 'function') {
      return;
    }
    const terminate = node.terminate.bind(node);
    node.on('unexpected-response', (_request, response) => {
      const header = response.headers?.['retry-after'];
      if (socket === this.socket) {
        this.refusal = {
          status: response.statusCode ?? 0,
          hintMs: retryAfterMs(Array.isArray(header) ? header[0] : header),
        };
      }
      terminate();
    });
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

  /** Browsers cannot see ping frames: an application ping that goes unanswered means a dead link. */
  private startPinging(): void {
    this.stopPinging();
    const interval = this.options.pingIntervalMs ?? this.welcome?.heartbeatMs ?? 30_000;
    this.pingTimer = setInterval(() => {
      if (this.socket === null || this.pongTimer !== null) {
        return;
      }
      this.socket.send(JSON.stringify({ type: ClientMessageType.Ping }));
      this.pongTimer = setTimeout(
        () => this.deadLink(),
        this.options.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS,
      );
    }, interval);
  }

  private stopPinging(): void {
    if (this.pingTimer !== null) {
      clearInterval(this.pingTimer);
      this.pingTimer = null;
    }
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
  }

  /** Abandons a socket whose close event might not come for minutes, and reconnects now. */
  private deadLink(): void {
    const socket = this.socket;
    if (socket === null) {
      return;
    }
    this.closed(socket, CloseCode.Abnormal, 'ping timeout');
    socket.onmessage = null;
    socket.onclose = null;
    socket.close(DEAD_LINK, 'ping timeout');
  }

  private stop(state: ConnectionState, message: string, code?: number): void {
    this.stopped = true;
    this.clearReconnect();
    this.clearStableTimer();
    this.stopPinging();
    (globalThis as OnlineEvents).removeEventListener?.('online', this.onOnline);
    this.rejectPending(message);
    this.setState(state);
    this.settleWaiters(new Error(`not connected (state: ${state}): ${message}`));
    this.emit('stopped', { state, code, message });
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
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

/** A page loaded over https must use wss (browsers block ws:// from such pages). */
function secureIfPageIs(url: string): string {
  const page = (globalThis as { location?: { protocol?: string } }).location;
  return page?.protocol === 'https:' && url.startsWith('ws://')
    ? `wss://${url.slice('ws://'.length)}`
    : url;
}

/** A close as the `reconnecting` event reports it: `1001 reconnect in 4310 ms`, or `1011`. */
function closeReason(code: number, reason: string): string {
  return reason ? `${code} ${reason}` : String(code);
}

/** A refusal's JSON body (`{ retryAfterMs }`), or null when it has none. */
async function jsonBody(response: Response): Promise<unknown> {
  try {
    return JSON.parse(await response.text()) as unknown;
  } catch {
    return null; // Not JSON (a proxy's page): the Retry-After header, if any, is the hint.
  }
}

/** The `message` of a Nest error body, or the status line. */
async function refusalMessage(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { message?: unknown };
    if (typeof body.message === 'string') {
      return body.message;
    }
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return `the ticket request was refused (${response.status})`;
}
