import type { ClientMessage, ServerMessage, StreamPosition } from '@switchboard/protocol';
import type { TransportName } from './transports/transport';
import type { ConnectionState, ReconnectingInfo } from './types';

/** How a connection ended, as the client's requests that waited on it are told. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** `connection closed: session expired (4002)`: what a request that waited on it fails with. */
  failure: string;
}

/** Why a connection stopped for good. */
export interface StopInfo {
  state: ConnectionState;
  code?: number;
  message: string;
}

/** Whether this tab holds the connection, borrows another tab's, or holds its own unshared. */
export type TabRole = 'leader' | 'follower' | 'alone';

/**
 * What a connection tells the client that uses it: this tab's own connection, or (with
 * `shareAcrossTabs`) the leading tab's, through it. The events are those of one socket's life.
 */
export interface LinkHandler {
  /** `connecting` or `reconnecting`; `open` comes with the welcome frame, the end with `stopped`. */
  state(state: 'connecting' | 'reconnecting'): void;
  /** A server frame for this tab (the welcome included), and its JSON text when at hand. */
  frame(message: ServerMessage, text?: string): void;
  closed(close: CloseInfo): void;
  /** `failure` is why the last attempt failed, when one did. */
  reconnecting(info: ReconnectingInfo, failure: string | null): void;
  stopped(stop: StopInfo): void;
  transport(transport: TransportName | null): void;
}

/** What a client sends through: its own connection, or the tab that holds the shared one. */
export interface Link {
  connect(): void;
  /** Sends one client frame; the client calls it only while open. */
  send(frame: ClientMessage): void;
  retryNow(): boolean;
  close(): void;
}

/** Where a tab stands in the streams it follows, for the tab that connects on its behalf. */
export interface TabStanding {
  own?: StreamPosition;
  rooms: Array<{ room: string; since?: StreamPosition }>;
}

/** The key of the user's own stream among a client's streams (rooms use their name). */
export const OWN_STREAM = '\u0000user';
