import type { ErrorData, RoomMessageData, ServerMessage, WelcomeData } from '@switchboard/protocol';

/** The subset of the WebSocket API the client uses: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

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
  /** The WebSocket class. @default globalThis.WebSocket (pass `ws`'s in Node < 22) */
  WebSocket?: WebSocketFactory;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** How often to send an application `ping` while open. @default the welcome's heartbeatMs */
  pingIntervalMs?: number;
  /** A ping not answered within this long means the link is dead. @default 10000 */
  pongTimeoutMs?: number;
  /** Reconnect backoff. @default first retry within 1 s, at most 30 s */
  backoff?: { initialMs?: number; maxMs?: number; random?: () => number };
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
  /** The client stopped for good: `closed`, `signed-out`, `replaced`, or too many ticket failures. */
  stopped: (reason: { state: ConnectionState; code?: number; message: string }) => void;
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
