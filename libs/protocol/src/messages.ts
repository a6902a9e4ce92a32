import type { ErrorCode } from './error-codes';

/** A client → server frame: `{ type, id?, data? }` as JSON text. */
export interface ClientMessage<T = unknown> {
  type: string;
  /** Correlation id, at most {@link MAX_MESSAGE_ID_LENGTH} characters; echoed in the reply. */
  id?: string;
  data?: T;
}

/** A server → client frame. `ts` is the server's clock in ms since the epoch. */
export interface ServerMessage<T = unknown> {
  type: string;
  id?: string;
  data?: T;
  ts: number;
}

export const MAX_MESSAGE_ID_LENGTH = 64;

/** Client message types (SPEC §6). */
export const ClientMessageType = {
  Ping: 'ping',
  RoomJoin: 'room.join',
  RoomLeave: 'room.leave',
  RoomMessage: 'room.message',
  Typing: 'typing',
  PresenceList: 'presence.list',
  SessionRefresh: 'session.refresh',
} as const;
export type ClientMessageType = (typeof ClientMessageType)[keyof typeof ClientMessageType];

/** Server message types (SPEC §6). Application events use any other name. */
export const ServerMessageType = {
  Welcome: 'welcome',
  Pong: 'pong',
  Error: 'error',
  RoomJoined: 'room.joined',
  RoomLeft: 'room.left',
  RoomMessage: 'room.message',
  RoomTyping: 'room.typing',
  PresenceJoined: 'presence.joined',
  PresenceLeft: 'presence.left',
  PresenceList: 'presence.list',
  SessionRefreshed: 'session.refreshed',
  SessionExpiring: 'session.expiring',
} as const;
export type ServerMessageType = (typeof ServerMessageType)[keyof typeof ServerMessageType];

/** Prefixes that application events may not use: they belong to the protocol. */
export const RESERVED_EVENT_PREFIXES: readonly string[] = [
  'room.',
  'presence.',
  'session.',
  'error',
  'welcome',
  'pong',
];

export interface UserInfo {
  id: string;
  name: string;
}

/** The first frame of an accepted socket. */
export interface WelcomeData {
  connectionId: string;
  user: UserInfo;
  heartbeatMs: number;
  /** When the access token behind this connection expires, in ms since the epoch. */
  sessionExpiresAt: number;
  limits: {
    maxPayload: number;
    messagesPerWindow: number;
    windowMs: number;
  };
}

export interface ErrorData {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/** `POST /auth/ws-ticket` answer. */
export interface TicketResponse {
  ticket: string;
  /** Seconds until the ticket expires. */
  expiresIn: number;
  /** The full WebSocket URL, ticket included. */
  url: string;
}

/** `POST /auth/dev-token` answer. */
export interface DevTokenResponse {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}
