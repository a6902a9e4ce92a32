import type {
  ErrorData,
  RoomMessageData,
  ServerMessage,
  TypingData,
  UserInfo,
  WelcomeData,
} from '@switchboard/protocol';
import type { TabRole } from './link';
import type { TransportName } from './transports/transport';

export type { TabRole } from './link';
export type { TransportName } from './transports/transport';

/**
 * An event handler slot. The browser and `ws` declare their handlers with richer event types than
 * the client reads; their parameters are compared bivariantly (as a method's are), so both
 * classes fit without a cast, and the client's handlers still type-check against what it reads.
 */
type EventHandler<E> = { handle(event: E): void }['handle'];

/**
 * The subset of the WebSocket API the client uses, as a structure: the browser's `WebSocket`, or
 * `ws`'s in Node, fits it as it is (the SDK does not depend on `ws` or its types).
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: EventHandler<unknown> | null;
  onmessage: EventHandler<{ data: unknown }> | null;
  onclose: EventHandler<{ code: number; reason: string }> | null;
  onerror: EventHandler<unknown> | null;
}

/** A WebSocket class: `globalThis.WebSocket`, or `import WebSocket from 'ws'`. */
export type WebSocketFactory = new (url: string) => WebSocketLike;

export type ConnectionState =
  'idle' | 'connecting' | 'open' | 'reconnecting' | 'replaced' | 'signed-out' | 'closed';

export interface ClientOptions {
  /** The server's base URL, e.g. `https://rt.example.com` (the ticket route is `/auth/ws-ticket`). */
  url: string;
  /**
   * Returns the access token to trade for a ticket. Called before every ticket; `refresh` is true
   * after the server said the session expired (`4002` or a `401`): return a fresh token then.
   *
   * Leave it out for a **cookie session**: the browser's cookies authenticate the ticket request
   * instead (the server's `AUTH_COOKIE`, a guest's from `signInAsGuest`, or the host
   * application's own session), sent with `credentials: 'include'` and no `Authorization` header.
   * A `401` then means the browser is not signed in: the client stops (`signed-out`) at once,
   * without retrying. The server takes a cookie only from a page of its `ALLOWED_ORIGINS`.
   * @default none: a cookie session
   */
  getAccessToken?(context: { refresh: boolean }): string | Promise<string>;
  /**
   * The WebSocket class: in Node 20, `ws`'s (`import WebSocket from 'ws'`).
   * @default globalThis.WebSocket
   */
  WebSocket?: WebSocketFactory;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** How often to send an application `ping` while open. @default the welcome's heartbeatMs */
  pingIntervalMs?: number;
  /** A ping not answered within this long means the link is dead. @default 10000 */
  pongTimeoutMs?: number;
  /**
   * Reconnect backoff: exponential with full jitter over the whole sequence (ticket, upgrade,
   * welcome, rejoin). The attempt count starts over only once a connection has stayed open
   * `resetAfterMs`, so a socket that opens and closes at once keeps backing off.
   * @default first retry within 1 s, at most 30 s, reset after 10000 ms open
   */
  backoff?: { initialMs?: number; maxMs?: number; random?: () => number; resetAfterMs?: number };
  /** How long a request (join, refresh, …) waits for its reply. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * The transports to try, in order. When an attempt over one breaks before the server's welcome
   * twice in a row (a proxy that refuses WebSocket upgrades), the client falls back to the next,
   * remembers that for the page's session (`sessionStorage`), and tries the first again on the
   * first reconnect after 5 minutes. A WebSocket needs a WebSocket class (the `WebSocket` option
   * in Node 20); without one, the client uses SSE.
   * @default ['websocket', 'sse']
   */
  transports?: TransportName[];
  /** The server's `SSE_PATH`: the event stream, and `<ssePath>/messages` for the frames sent. @default '/sse' */
  ssePath?: string;
  /**
   * One connection per browser: one tab (the leader, elected with a Web Lock) holds the connection
   * and the others (followers) use it through a `BroadcastChannel`, per server URL and user. Each
   * tab keeps the same API and its own rooms; when the leader closes, another tab takes over
   * within 2 s and recovers every stream. `role` says which this tab is.
   * @default true in a page where `navigator.locks` and `BroadcastChannel` exist, false elsewhere
   */
  shareAcrossTabs?: boolean;
  /**
   * The Web Locks API that elects the leading tab, for environments without `navigator.locks`
   * (and tests). @default globalThis.navigator.locks
   */
  locks?: LockManagerLike;
  /** The BroadcastChannel class the tabs talk through. @default globalThis.BroadcastChannel */
  BroadcastChannel?: BroadcastChannelFactory;
}

/** The part of the Web Locks API (`navigator.locks`) that tab sharing uses. */
export interface LockManagerLike {
  request<T>(
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    callback: (lock: unknown) => T | Promise<T>,
  ): Promise<T>;
  query?(): Promise<{ held?: Array<{ name?: string }>; pending?: Array<{ name?: string }> }>;
}

/** The part of a `BroadcastChannel` that tab sharing uses. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: EventHandler<{ data: unknown }> | null;
}

/** A BroadcastChannel class: `globalThis.BroadcastChannel`. */
export type BroadcastChannelFactory = new (name: string) => BroadcastChannelLike;

export interface ClientEvents {
  state: (state: ConnectionState) => void;
  welcome: (welcome: WelcomeData) => void;
  /** Every frame from the server, after the client's own handling. */
  message: (message: ServerMessage) => void;
  /** An `error` frame that no pending request claimed. */
  error: (error: ErrorData) => void;
  /** The socket closed (before the client decides what to do). */
  close: (close: { code: number; reason: string }) => void;
  /**
   * A stream was recovered after a reconnect: its `missed` publications follow (a room's, or with
   * no `room` the user's own), so the application's state stays whole.
   */
  recovered: (recovery: { room?: string; missed: number }) => void;
  /**
   * A stream could not be recovered (its history was lost or the client was away too long):
   * reload that state another way, e.g. `history()` for a room.
   */
  reset: (reset: { room?: string }) => void;
  /**
   * The client waits `delayMs` before its next attempt (`attempt`: 1 for the first retry since
   * the connection was last stable). `reason` says why, in short: `1001 reconnect in 4310 ms`,
   * `4029 retry after 12 s`, `ticket 503`, `ticket failed`, `upgrade failed`, `online`.
   * `retryNow()` cuts the wait short.
   */
  reconnecting: (info: ReconnectingInfo) => void;
  /** The client stopped for good: `closed`, `signed-out`, `replaced`, or too many ticket failures. */
  stopped: (reason: { state: ConnectionState; code?: number; message: string }) => void;
  /**
   * A joined room's presence changed: after its `room.joined` (the join, and the rejoin after
   * every reconnect, whose snapshot replaces what the client knew), and after every
   * `presence.diff` and `presence.count` for it. `members(room)` and `count(room)` say the same.
   */
  presence: (change: PresenceChange) => void;
  /**
   * Users typed in a joined room during the server's last batch (`PRESENCE_BATCH_MS`), this
   * client's own user left out; a user who keeps typing is named again about every 2 s. None in rooms
   * above the server's `PRESENCE_DIFF_MAX_MEMBERS`.
   */
  typing: (typing: TypingData) => void;
  /**
   * The transport the connection is open over changed: `websocket` or `sse` once open, `null`
   * when it closes (`client.transport` says the same).
   */
  transport: (transport: TransportName | null) => void;
  /** With `shareAcrossTabs`: this tab became the `leader` or a `follower` (`client.role`). */
  role: (role: TabRole) => void;
}

/** What the `presence` event reports: a room's presence as the client now knows it. */
export interface PresenceChange {
  room: string;
  /**
   * The members the client knows, in user-id order: all of them in rooms of up to 100 members
   * (`MAX_LISTED_MEMBERS`), otherwise the first page of the last `room.joined` plus the users
   * the diffs since named as present. `presence(room, { after })` pages through the rest.
   */
  members: UserInfo[];
  /** How many users are in the room, cluster-wide. */
  count: number;
  /**
   * True after a `room.joined`: `members` is the server's snapshot, which replaced whatever the
   * client knew of the room (a first page when `count` is larger).
   */
  snapshot: boolean;
  /**
   * The users a `presence.diff` named as present, as it named them: possibly users already
   * known, and this client's own user (a diff is idempotent). Empty after a snapshot or a count.
   */
  joined: UserInfo[];
  /**
   * The ids of the users a `presence.diff` named as gone, possibly users the client never
   * listed. Empty after a snapshot or a count.
   */
  left: string[];
}

/** What the `reconnecting` event reports. */
export interface ReconnectingInfo {
  attempt: number;
  delayMs: number;
  reason: string;
}

/** A `room.message` frame's data (the protocol's `RoomMessageData`). */
export type RoomMessage = RoomMessageData;

/** A request the server refused with an `error` frame. */
export class SwitchboardError extends Error {
  constructor(readonly data: ErrorData) {
    super(data.message);
    this.name = 'SwitchboardError';
  }
  get code(): string {
    return this.data.code;
  }
}
