import { Global, Module } from '@nestjs/common';
import {
  SkipThrottle,
  ThrottlerModule,
  ThrottlerStorage,
  ThrottlerStorageService,
} from '@nestjs/throttler';
import { AppConfig } from '../config/app-config';
import { storeProvider } from '../redis/redis.module';
import { HttpThrottlerGuard } from './http-throttler.guard';
import { MemoryRateLimiter } from './memory-rate-limiter.store';
import { RateLimiter } from './rate-limiter.interface';
import { RedisRateLimiter } from './redis-rate-limiter.store';
import { RedisThrottlerStorage } from './redis-throttler.store';

/** `POST /auth/dev-token` calls per minute per address. */
export const DEV_TOKENS_PER_MINUTE = 60;
/** `POST /auth/anonymous` calls per minute per address (many visitors may share one address). */
export const ANONYMOUS_IDENTITIES_PER_MINUTE = 60;
const MINUTE_MS = 60_000;

/** The HTTP throttlers, by name. */
export const Throttlers = {
  Tickets: 'tickets',
  DevTokens: 'dev-tokens',
  Anonymous: 'anonymous',
  BroadcastApi: 'broadcast-api',
} as const;
type ThrottlerName = (typeof Throttlers)[keyof typeof Throttlers];

/**
 * Counts the route against `name` alone (`@nestjs/throttler` applies every throttler to every
 * guarded route unless told to skip it). Goes with `@UseGuards(…, HttpThrottlerGuard)`.
 */
export const ThrottledBy = (name: ThrottlerName): MethodDecorator & ClassDecorator =>
  SkipThrottle(
    Object.fromEntries(
      Object.values(Throttlers)
        .filter((other) => other !== name)
        .map((other) => [other, true]),
    ),
  );

/** Where the HTTP throttler counts: in memory, or in Redis in cluster mode (one place decides). */
const HTTP_THROTTLER_STORAGE = Symbol('HttpThrottlerStorage');

@Module({
  providers: [
    storeProvider<ThrottlerStorage>(
      HTTP_THROTTLER_STORAGE,
      () => new ThrottlerStorageService(),
      (redis) =>
        new RedisThrottlerStorage(
          redis,
          new Set([Throttlers.Tickets]),
          new ThrottlerStorageService(),
        ),
    ),
  ],
  exports: [HTTP_THROTTLER_STORAGE],
})
class HttpThrottlerStorageModule {}

/**
 * Limits: the HTTP routes' through `@nestjs/throttler` (`HttpThrottlerGuard`: tickets per minute
 * per user, cluster-wide; dev tokens per minute and broadcast API calls per second per address, per
 * instance), and the WebSocket side's through `RateLimiter`
 * (connect attempts per user), whose fixed windows the handshake and the
 * message handlers call directly, where no HTTP guard runs. Both count cluster-wide in Redis.
 */
@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      imports: [HttpThrottlerStorageModule],
      inject: [AppConfig, HTTP_THROTTLER_STORAGE],
      useFactory: (config: AppConfig, storage: ThrottlerStorage) => ({
        throttlers: [
          { name: Throttlers.Tickets, ttl: MINUTE_MS, limit: config.limits.ticketsPerMinute },
          { name: Throttlers.DevTokens, ttl: MINUTE_MS, limit: DEV_TOKENS_PER_MINUTE },
          {
            name: Throttlers.Anonymous,
            ttl: MINUTE_MS,
            limit: ANONYMOUS_IDENTITIES_PER_MINUTE,
          },
          {
            name: Throttlers.BroadcastApi,
            ttl: 1000,
            limit: config.limits.broadcastApiCallsPerSecond,
          },
        ],
        storage,
      }),
    }),
  ],
  providers: [
    HttpThrottlerGuard,
    storeProvider<RateLimiter>(
      RateLimiter,
      () => new MemoryRateLimiter(),
      (redis) => new RedisRateLimiter(redis),
    ),
  ],
  exports: [RateLimiter, ThrottlerModule, HttpThrottlerGuard],
})
export class RateLimitModule {}
