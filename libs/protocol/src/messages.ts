import type { ErrorCode } from './error-codes';

/** A client → server frame: `{ type, id?, data? }` as JSON text. */
export interface ClientMessage<T = unknown> {
  type: string;
  /** Correlation id, at most {@link MAX_MESSAGE_ID_LENGTH} characters; echoed in the reply. */
  id?: string;
  data?: T;
}

/**
 * A server → client frame. `ts` is the server's clock in ms since the epoch. A publication that
 * belongs to a stream carries its `offset` in that stream, and `room` when the stream is a room's
 * (an `offset` without `room` is the user's own stream).
 */
export interface ServerMessage<T = unknown> {
  type: string;
  id?: string;
  data?: T;
  ts: number;
  offset?: number;
  room?: string;
}

export const MAX_MESSAGE_ID_LENGTH = 64;

/** How a client is connected: a WebSocket, or Server-Sent Events plus HTTP POST. */
export type TransportKind = 'websocket' | 'sse';
/** A user id (the access token's `sub`) is 1–128 characters. */
export const MAX_USER_ID_LENGTH = 128;

/** Client message types (docs/protocol.md, Messages). */
export const ClientMessageType = {
  Ping: 'ping',
  RoomJoin: 'room.join',
  RoomLeave: 'room.leave',
  RoomMessage: 'room.message',
  RoomHistory: 'room.history',
  Typing: 'typing',
  PresenceList: 'presence.list',
  SessionRefresh: 'session.refresh',
} as const;
export type ClientMessageType = (typeof ClientMessageType)[keyof typeof ClientMessageType];
/** Every client message type, e.g. for bounded metric labels. */
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = Object.values(ClientMessageType);

/** Server message types (docs/protocol.md, Messages). Application events use any other name. */
export const ServerMessageType = {
  Welcome: 'welcome',
  Pong: 'pong',
  Error: 'error',
  RoomJoined: 'room.joined',
  RoomLeft: 'room.left',
  RoomMessage: 'room.message',
  RoomHistory: 'room.history',
  PresenceDiff: 'presence.diff',
  PresenceCount: 'presence.count',
  PresenceList: 'presence.list',
  Typing: 'typing',
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
  'typing',
];

/**
 * Where a stream stands: `epoch` changes whenever the stream's history was lost, `offset` is its
 * latest publication's (0 before the first).
 */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/**
 * What a stream's recovery found, in `welcome` (the user's own stream, asked for by `since` in the
 * upgrade URL) and `room.joined` (asked for by `since` in `room.join`): `recovered: true` and the
 * `missed` publications follow at once, in order; `recovered: false` and the client must reload
 * its state another way.
 */
export interface StreamRecovery {
  position: StreamPosition;
  recovered?: boolean;
  missed?: number;
}

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
  /** The user's own stream; absent while history is off (`HISTORY_SIZE=0`). */
  position?: StreamPosition;
  /**
   * Server-Sent Events only: the credential of `POST <SSE_PATH>/messages` for this connection
   * (`Authorization: Bearer <sendToken>`, with `X-Switchboard-Connection: <connectionId>`).
   */
  sendToken?: string;
  recovered?: boolean;
  missed?: number;
}

/** Members named in a `room.joined` reply; `count` has them all (`presence.list` pages on). */
export const MAX_LISTED_MEMBERS = 100;

/** `room.joined` and `presence.list`: the first members in id order, `count` of them all. */
export interface RoomMembersData {
  room: string;
  members: UserInfo[];
  count: number;
}

/** `room.joined`: the members, and where the room's stream stands (absent while history is off). */
export interface RoomJoinedData extends RoomMembersData {
  position?: StreamPosition;
  recovered?: boolean;
  missed?: number;
}

/** `room.left` (and the `data` of `room.leave` and of the client's `typing`). */
export interface RoomData {
  room: string;
}

/** `room.join`: the room, and the last position the client holds of its stream, to recover from. */
export interface RoomJoinRequest extends RoomData {
  since?: StreamPosition;
}

/** `room.history`: scrollback, at most `limit` (1–100, default 50) publications before `before`. */
export interface RoomHistoryRequest extends RoomData {
  limit?: number;
  before?: number;
}

/** `room.history` answer: publications as they were sent, oldest first. */
export interface RoomHistoryData {
  room: string;
  position: StreamPosition;
  messages: ServerMessage[];
}

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

/**
 * `presence.list` from a client: up to `limit` (1–500, default 100) members in id order, those
 * after the member id `after` (a page's `next`).
 */
export interface PresenceListRequest extends RoomData {
  after?: string;
  limit?: number;
}

/** `presence.list` answer: one page of members; `next` is there while more may follow. */
export interface PresenceListData extends RoomMembersData {
  next?: string;
}

/**
 * `presence.diff`: who came and who went in the last batch (`PRESENCE_BATCH_MS`), and how many
 * members the room has now, cluster-wide. A user named in `joined` is present, one in `left` is
 * not: apply both to the members you know. Rooms above `PRESENCE_DIFF_MAX_MEMBERS` get
 * `presence.count` instead.
 */
export interface PresenceDiffData {
  room: string;
  joined: UserInfo[];
  left: string[];
  count: number;
}

/** `presence.count`: a large room's member count, at most once per batch. */
export interface PresenceCountData {
  room: string;
  count: number;
}

/**
 * `typing` from the server: the users who typed in the room during the last batch (the
 * recipient's own user may be among them). None in rooms above `PRESENCE_DIFF_MAX_MEMBERS`.
 */
export interface TypingData {
  room: string;
  users: UserInfo[];
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

/**
 * `POST /auth/anonymous`'s answer (with `ANONYMOUS=true`); the identity itself travels in the
 * HttpOnly `switchboard_anon` cookie it sets.
 */
export interface AnonymousResponse {
  /** `anon:` and a random id. */
  userId: string;
  name: string;
  /** Seconds the identity lives unused; each ticket renews it. */
  expiresIn: number;
}

/** An anonymous visitor's user id starts with this. */
export const ANONYMOUS_USER_PREFIX = 'anon:';
