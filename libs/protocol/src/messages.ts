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
/** Every client message type, e.g. for bounded metric labels. */
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = Object.values(ClientMessageType);

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

/** `room.joined` and `presence.list`: at most 100 members listed, `count` of them all. */
export interface RoomMembersData {
  room: string;
  members: UserInfo[];
  count: number;
}

/** `room.left` (and the `data` of `room.leave`, `typing`, `presence.list`). */
export interface RoomData {
  room: string;
}

/** `room.join`: the room. */
export type RoomJoinRequest = RoomData;

/** `room.message` from a client. */
export interface RoomMessageRequest {
  room: string;
  /** 1–4000 characters after sanitizing. */
  text: string;
}

/** `room.message` to every member, sender included. */
export interface RoomMessageData {
  room: string;
  from: UserInfo;
  text: string;
  messageId: string;
}

/** `presence.joined`, `presence.left` and `room.typing`: who, in which room. */
export interface RoomUserData {
  room: string;
  user: UserInfo;
}

/** `session.refresh` from a client: a fresh access token of the same user. */
export interface SessionRefreshRequest {
  token: string;
}

/** `session.refreshed` and `session.expiring`: when the session ends, in ms since the epoch. */
export interface SessionExpiryData {
  expiresAt: number;
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
