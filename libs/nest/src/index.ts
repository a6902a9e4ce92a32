/**
 * `@switchboard/nest`: Switchboard inside any Nest 11 application (docs/nest.md).
 *
 * ```ts
 * @Module({ imports: [SwitchboardModule.forRoot({ jwtSecret, allowedOrigins, redisUrl })] })
 * export class AppModule {}
 * ```
 */

// The module and its options.
export {
  SwitchboardModule,
  type SwitchboardHooks,
  type SwitchboardModuleAsyncOptions,
  type SwitchboardModuleOptions,
} from './switchboard.module';
export {
  configFromSettings,
  type SwitchboardSettings,
  switchboardOptionsFromEnv,
} from './config/options';
export { ConfigError } from './config/config.error';
export { Clock } from './config/clock';

// What a host application uses.
export { BroadcastService, InvalidBroadcastError } from './broadcast/broadcast.service';
export { BroadcastUnavailableError } from './core/broker/broker.interface';
export { SwitchboardSocket } from './realtime/host/switchboard-socket';
export { SwitchboardWsExceptionFilter } from './realtime/host/ws-exception.filter';
export { SwitchboardWsAdapter } from './realtime/handshake/ws.adapter';
export { SwitchboardHealthIndicator } from './health/switchboard.health';
export { type ErrorContext, ErrorTracker } from './errors/error-tracker';
export { ClaimsRoomPolicy, RoomPolicy } from './realtime/rooms/room-policy';
export type { Session } from './core/session';
export type { Authenticate, HostSession } from './auth/cookie-sessions';

// What the standalone server (and its tests) build on; not needed by a host application.
export { AppConfig } from './config/app-config';
export { loadConfig } from './config/config.schema';
export { createLogger, PinoLoggerService } from './logging/logger';
export { DrainService } from './realtime/connections/drain.service';
export { HttpExceptionFilter } from './common/http-exception.filter';
export { JSON_BODY_LIMIT_BYTES, jsonTooDeep, MAX_JSON_DEPTH } from './common/json-depth';
export { BROADCAST_KEY_REFUSAL, BroadcastApiKeyGuard } from './broadcast/broadcast-api-key.guard';
export { BROADCAST_API_ROUTE } from './broadcast/broadcast.controller';
export { signDevToken } from './auth/dev-token.service';
export { DEV_TOKEN_MAX_TTL_S } from './auth/dev-token.dto';
