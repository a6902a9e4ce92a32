export { Backoff, type BackoffOptions } from './backoff';
export { SwitchboardClient } from './switchboard-client';
export {
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
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
  type RoomHistoryData,
  type RoomJoinedData,
  type RoomMembersData,
  type RoomMessageData,
  type RoomUserData,
  type ServerMessage,
  ServerMessageType,
  type SessionExpiryData,
  type StreamPosition,
  type UserInfo,
  type WelcomeData,
} from '@switchboard/protocol';
