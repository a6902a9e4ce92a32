import type { RawData, WebSocket } from 'ws';
import { CloseCode, CloseReason } from '@switchboard/protocol';
import type { Connection } from '../../core/connection';

const CONNECTION = Symbol('connection');
type TrackedSocket = WebSocket & { [CONNECTION]?: Connection };

/** Ties a socket to its connection, for the shared listeners below. */
export function attach(socket: WebSocket, connection: Connection): void {
  (socket as TrackedSocket)[CONNECTION] = connection;
}

/**
 * One set of socket listeners for every socket (ws calls them with the socket as `this`), so
 * that a connection costs no closures of its own.
 */
export function socketListeners(handlers: {
  receive(connection: Connection, text: string): void;
  closed(connection: Connection, code: number): void;
  failed(connection: Connection, error: Error & { code?: string }): void;
}) {
  return {
    pong(this: TrackedSocket): void {
      const connection = this[CONNECTION];
      if (connection) {
        connection.awaitingPong = false;
      }
    },
    message(this: TrackedSocket, data: RawData, isBinary: boolean): void {
      const connection = this[CONNECTION];
      if (connection === undefined) {
        return;
      }
      if (isBinary) {
        connection.close(CloseCode.UnsupportedData, CloseReason.BinaryFrame);
        return;
      }
      // binaryType is 'nodebuffer' (the default), so a text frame arrives as one Buffer.
      handlers.receive(connection, (data as Buffer).toString('utf8'));
    },
    error(this: TrackedSocket, error: Error & { code?: string }): void {
      const connection = this[CONNECTION];
      if (connection) {
        handlers.failed(connection, error);
      }
    },
    close(this: TrackedSocket, code: number): void {
      const connection = this[CONNECTION];
      if (connection) {
        handlers.closed(connection, code);
      }
    },
  };
}

/**
 * The close code ws sends for a receive error (1002, 1007, 1008, 1009): ws keeps it under a
 * private symbol described `status-code`; null for errors that close nothing (e.g. a reset).
 */
export function wsErrorCloseCode(error: Error): number | null {
  const key = Object.getOwnPropertySymbols(error).find((s) => s.description === 'status-code');
  const code = key === undefined ? undefined : (error as unknown as Record<symbol, unknown>)[key];
  return typeof code === 'number' ? code : null;
}
