export { Backoff, type BackoffOptions } from './backoff';
export { SwitchboardClient } from './switchboard-client';
export {
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type PresenceChange,
  type ReconnectingInfo,
  type RoomMessage,
  SwitchboardError,
  type WebSocketFactory,
  type WebSocketLike,
} from './types';
export {
  ClientMessageType,
  CloseCode,
  closeAction,
  ErrorCode,
  MAX_LISTED_MEMBERS,
  type PresenceCountData,
  type PresenceDiffData,
  type PresenceListData,
  type RoomHistoryData,
  type RoomJoinedData,
  type RoomMembersData,
  type RoomMessageData,
  type ServerMessage,
  ServerMessageType,
  type SessionExpiryData,
  type StreamPosition,
  type TypingData,
  type UserInfo,
  type WelcomeData,
} from '@switchboard/protocol';
