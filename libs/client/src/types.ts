import type { ErrorData, RoomMessageData, ServerMessage, WelcomeData } from '@switchboard/protocol';

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
   */
  getAccessToken(context: { refresh: boolean }): string | Promise<string>;
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
}

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
