import {
  type DynamicModule,
  type FactoryProvider,
  type MiddlewareConsumer,
  Module,
  type ModuleMetadata,
  type NestModule,
  RequestMethod,
  type Type,
} from '@nestjs/common';
import type { Registry } from 'prom-client';
import { AuthModule } from './auth/auth.module';
import { type Authenticate, HOST_AUTHENTICATE, NO_HOST_SESSIONS } from './auth/cookie-sessions';
import { BroadcastModule } from './broadcast/broadcast.module';
import { CorsMiddleware } from './cors.middleware';
import { AppConfig } from './config/app-config';
import type { Clock } from './config/clock';
import { ConfigModule } from './config/config.module';
import { configFromSettings, type SwitchboardSettings } from './config/options';
import { ConfigError } from './config/config.error';
import { CoreModule } from './core/core.module';
import { ErrorTrackingModule } from './errors/error-tracking.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { RealtimeModule } from './realtime/realtime.module';
import type { RoomPolicy } from './realtime/rooms/room-policy';
import { RedisModule } from './redis/redis.module';
import { TicketsModule } from './tickets/tickets.module';

/** What a host application may give Switchboard besides its settings. */
export interface SwitchboardHooks {
  /** Who may join which room. @default the token's `rooms` claim (`ClaimsRoomPolicy`) */
  roomPolicy?: Type<RoomPolicy>;
  /** The clock behind token, session and ticket lifetimes. @default the system clock */
  clock?: Clock;
  /** The Prometheus registry for Switchboard's metrics. @default prom-client's global `register` */
  metricsRegistry?: Registry;
  /**
   * Which of Switchboard's operational routes it serves itself: `GET /metrics` (its registry) and
   * `GET /health/live` and `/health/ready`. A host with its own turns them off and uses the
   * registry and `SwitchboardHealthIndicator`. @default both
   */
  routes?: { metrics?: boolean; health?: boolean };
  /**
   * The host's own sessions (express-session, passport, its cookies): asked for the user of a
   * ticket request or an upgrade that carries no ticket and no Bearer token, only from a page of
   * `allowedOrigins` (docs/nest.md, Your own sessions). Instead of `authCookie`.
   */
  authenticate?: Authenticate;
}

/** `SwitchboardModule.forRoot`'s argument: the settings (docs/configuration.md) and the hooks. */
export interface SwitchboardModuleOptions extends SwitchboardSettings, SwitchboardHooks {}

/** `SwitchboardModule.forRootAsync`'s argument, as `@nestjs/throttler` and `@nestjs/jwt` take it. */
export interface SwitchboardModuleAsyncOptions extends SwitchboardHooks {
  imports?: ModuleMetadata['imports'];
  inject?: FactoryProvider['inject'];
  /** The settings, e.g. from the host's `ConfigService`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Nest's own factory signature
  useFactory: (...args: any[]) => SwitchboardSettings | Promise<SwitchboardSettings>;
}

/** One way to read a browser's session cookie: the token in `authCookie`, or the host's hook. */
function assertOneCookieSession(config: AppConfig, hooks: SwitchboardHooks): void {
  if (hooks.authenticate !== undefined && config.authCookie !== undefined) {
    throw new ConfigError(
      'authenticate',
      'cannot be combined with authCookie: give the hook, or the cookie that holds the access token',
    );
  }
}

/** Switchboard's routes, for its CORS (a host's own routes keep the host's). */
const ROUTES = [
  { path: 'auth/ws-ticket', method: RequestMethod.ALL },
  { path: 'auth/dev-token', method: RequestMethod.ALL },
  { path: 'auth/logout', method: RequestMethod.ALL },
  { path: 'auth/anonymous', method: RequestMethod.ALL },
  { path: 'api/broadcast', method: RequestMethod.ALL },
];

const HOOK_KEYS: ReadonlySet<string> = new Set([
  'roomPolicy',
  'clock',
  'metricsRegistry',
  'routes',
  'authenticate',
]);

/**
 * Switchboard inside a Nest application (docs/nest.md): the auth and ticket routes, the WebSocket
 * endpoint on the application's own HTTP server, `BroadcastService` injectable anywhere, host
 * message types through the application's own gateways, metrics, health and the drain on
 * shutdown. Import it once, in the root module.
 */
@Module({})
export class SwitchboardModule implements NestModule {
  /**
   * @throws ConfigError naming the first option that is wrong (at boot, before anything starts)
   */
  static forRoot(options: SwitchboardModuleOptions = {}): DynamicModule {
    const settings = Object.fromEntries(
      Object.entries(options).filter(([key]) => !HOOK_KEYS.has(key)),
    ) as SwitchboardSettings;
    return SwitchboardModule.forConfig(configFromSettings(settings), options);
  }

  /** The settings from a factory (the host's `ConfigService`, a secret store); checked at boot. */
  static forRootAsync(options: SwitchboardModuleAsyncOptions): DynamicModule {
    const config: FactoryProvider<AppConfig> = {
      provide: AppConfig,
      inject: options.inject ?? [],
      useFactory: async (...args: unknown[]) => {
        const config = configFromSettings(await options.useFactory(...args));
        assertOneCookieSession(config, options);
        return config;
      },
    };
    return SwitchboardModule.build(
      config,
      options,
      { broadcastApi: true, adminApi: true },
      options.imports,
    );
  }

  /**
   * A configuration already checked (the standalone server's, from the environment; the tests',
   * with internal timings changed).
   */
  static forConfig(config: AppConfig, hooks: SwitchboardHooks = {}): DynamicModule {
    assertOneCookieSession(config, hooks);
    return SwitchboardModule.build(config, hooks, {
      broadcastApi: config.broadcastApiKey !== undefined,
      adminApi: config.adminToken !== undefined,
    });
  }

  private static build(
    config: AppConfig | FactoryProvider<AppConfig>,
    hooks: SwitchboardHooks,
    /** Which keyed routes exist (where the key is known only later, their guards answer `404`). */
    { broadcastApi, adminApi }: { broadcastApi: boolean; adminApi: boolean },
    imports: ModuleMetadata['imports'] = [],
  ): DynamicModule {
    return {
      module: SwitchboardModule,
      global: true,
      imports: [
        ConfigModule.forRoot(config, hooks.clock, imports),
        ErrorTrackingModule,
        RedisModule,
        MetricsModule.forRoot({
          registry: hooks.metricsRegistry,
          route: hooks.routes?.metrics ?? true,
        }),
        CoreModule,
        RateLimitModule,
        BroadcastModule.forRoot({ httpApi: broadcastApi }),
        AuthModule,
        TicketsModule,
        RealtimeModule.forRoot({ roomPolicy: hooks.roomPolicy, adminApi }),
        HealthModule.forRoot({ routes: hooks.routes?.health ?? true }),
      ],
      providers: [
        CorsMiddleware,
        { provide: HOST_AUTHENTICATE, useValue: hooks.authenticate ?? NO_HOST_SESSIONS },
      ],
      exports: [BroadcastModule, HealthModule, RealtimeModule, MetricsModule, HOST_AUTHENTICATE],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(CorsMiddleware).forRoutes(...ROUTES);
  }
}
