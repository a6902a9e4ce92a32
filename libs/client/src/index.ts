export { Backoff, type BackoffOptions } from './backoff';
export { SwitchboardClient } from './switchboard-client';
export {
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type RoomMessage,
  SwitchboardError,
  type WebSocketFactory,
  type WebSocketLike,
} from './types';
export {
  CloseCode,
  closeAction,
  ErrorCode,
  type ServerMessage,
  type UserInfo,
  type WelcomeData,
} from '@app/protocol';
