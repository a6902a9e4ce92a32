import type { TransportKind } from '@switchboard/protocol';

/** The ways a client can reach the server, in the order it tries them by default. */
export type TransportName = TransportKind;

/** What one transport attempt reports to the connection that made it. */
export interface TransportListener {
  /** The WebSocket opened, or the stream was answered `200`: the ticket is spent from here on. */
  open(): void;
  /** One server frame, as the JSON text a WebSocket would carry. */
  message(text: string): void;
  /**
   * The server refused before opening, with an HTTP status and the wait it asked for (null when it
   * gave none). A `close(1006)` follows.
   */
  refused(status: number, hintMs: number | null): void;
  /** The connection ended, with a close code of docs/protocol.md (1006 when it just broke); once. */
  close(code: number, reason: string): void;
}

/**
 * One attempt to hold a connection over one transport: a WebSocket, or an event stream plus
 * POSTs. Frames and close codes are the same over both; the connection above does not care which.
 */
export interface Transport {
  readonly name: TransportName;
  /** Set right after construction; cleared to abandon the transport (no event reaches it then). */
  listener: TransportListener | null;
  /** Sends one client frame, as JSON text. */
  send(frame: string): void;
  /** Closes from this side; `close(code, reason)` follows, as a WebSocket's close event would. */
  close(code: number, reason: string): void;
}
