import {
  ClientMessageType,
  closeAction,
  CloseCode,
  type ErrorData,
  retryAfterSeconds,
  type RoomHistoryData,
  type RoomJoinedData,
  type RoomMembersData,
  type ServerMessage,
  ServerMessageType,
  type SessionExpiryData,
  type StreamPosition,
  type StreamRecovery,
  type TicketResponse,
  type WelcomeData,
} from '@switchboard/protocol';
import { Backoff } from './backoff';
import {
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  SwitchboardError,
  type WebSocketFactory,
  type WebSocketLike,
} from './types';

/** 4001 closes in a row after which the client stops: the tickets are refused for a reason. */
const MAX_TICKET_FAILURES = 3;
const DEFAULT_PONG_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** The close code this client uses when it abandons a dead link. */
const DEAD_LINK = 4000;
/** The key of the user's own stream among the streams the client tracks (rooms use their name). */
const OWN_STREAM = '\u0000user';

interface Pending {
  resolve(data: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

type Listeners = { [K in keyof ClientEvents]: Set<ClientEvents[K]> };

/**
 * A Switchboard connection that keeps itself alive: it trades an access token for a ticket,
 * connects, answers every close code as docs/sdk.md says (reconnect with jittered backoff, new
 * ticket, fresh token, wait, or stop), detects dead links with application pings, and re-joins
 * its rooms after a reconnect.
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
  private readonly pending = new Map<string, Pending>();
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
  };
  private socket: WebSocketLike | null = null;
  private ticketFailures = 0;
  private wantFreshToken = false;
  private stopped = false;
  private seq = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;

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
  }

  /** Starts connecting (and keeps the connection up until `close()` or a stopping close code). */
  connect(): void {
    if (this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting') {
      return;
    }
    this.stopped = false;
    this.ticketFailures = 0;
    this.backoff.reset();
    this.setState('connecting');
    void this.open();
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
   * `connect()` then `await join(room)` works; it gives up after `requestTimeoutMs`.
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

  async leave(room: string): Promise<void> {
    this.rooms.delete(room);
    this.positions.delete(room);
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

  typing(room: string): boolean {
    return this.send(ClientMessageType.Typing, { room });
  }

  presence(room: string): Promise<RoomMembersData> {
    return this.request(ClientMessageType.PresenceList, { room });
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
    try {
      url = await this.ticketUrl();
    } catch {
      // The network or the server failed: retried with backoff, like a dropped socket.
      this.scheduleReconnect(this.backoff.next());
      return;
    }
    if (url === null || this.stopped) {
      return;
    }
    const socket = new this.WebSocketImpl(secureIfPageIs(url));
    this.socket = socket;
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
        const { url } = (await response.json()) as TicketResponse;
        const own = this.positions.get(OWN_STREAM);
        // Not a secret: where the client stands in its own stream, to get what it missed.
        return own?.epoch
          ? `${url}&since=${encodeURIComponent(`${own.epoch}:${own.offset}`)}`
          : url;
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
      const retryAfter = Number(response.headers.get('retry-after'));
      const delay = retryAfter > 0 ? retryAfter * 1000 : this.backoff.next();
      this.scheduleReconnect(delay);
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
      this.backoff.reset();
      this.startPinging();
      this.setState('open');
      this.emit('welcome', this.welcome);
      void this.rejoin();
    } else if (message.type === ServerMessageType.Pong && this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    const pending = message.id === undefined ? undefined : this.pending.get(message.id);
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
    this.socket = null;
    this.stopPinging();
    this.rejectPending('connection closed');
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
        this.scheduleReconnect(this.backoff.next());
        return;
      case 'new-ticket':
        this.ticketFailures += 1;
        if (this.ticketFailures >= MAX_TICKET_FAILURES) {
          this.stop('closed', `tickets refused ${MAX_TICKET_FAILURES} times in a row (4001)`, code);
        } else {
          this.scheduleReconnect(this.backoff.next());
        }
        return;
      case 'refresh-token':
        this.wantFreshToken = true;
        this.scheduleReconnect(0);
        return;
      case 'signed-out':
        this.stop('signed-out', reason || 'session revoked', code);
        return;
      case 'replaced':
        this.stop('replaced', reason || 'replaced by a newer connection', code);
        return;
      case 'wait': {
        const seconds = retryAfterSeconds(reason);
        this.scheduleReconnect(seconds === null ? this.backoff.next() : seconds * 1000);
        return;
      }
      default: {
        const unreachable: never = action;
        throw new Error(`unknown close action ${String(unreachable)}`);
      }
    }
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.stopped) {
      return;
    }
    this.setState('reconnecting');
    this.clearReconnect();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delayMs);
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

  private async rejoin(): Promise<void> {
    for (const room of [...this.rooms]) {
      try {
        await this.join(room);
      } catch (error) {
        if (error instanceof SwitchboardError) {
          this.rooms.delete(room);
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
    this.stopPinging();
    this.rejectPending(message);
    this.setState(state);
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

  /** Resolves when the client is next open; rejects if it stops first or takes too long. */
  private opened(): Promise<void> {
    const timeoutMs = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const settle = (error: Error | null): void => {
        clearTimeout(timer);
        off();
        if (error === null) {
          resolve();
        } else {
          reject(error);
        }
      };
      const timer = setTimeout(
        () => settle(new Error(`not connected within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const off = this.on('state', (state) => {
        if (state === 'open') {
          settle(null);
        } else if (state !== 'connecting' && state !== 'reconnecting') {
          settle(new Error(`not connected (state: ${state})`));
        }
      });
    });
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
