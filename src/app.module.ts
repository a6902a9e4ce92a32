import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthModule } from './auth/auth.module';
import { BroadcastModule } from './broadcast/broadcast.module';
import { HttpExceptionFilter } from './common/http-exception.filter';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import type { AppConfig } from './config/app-config';
import type { Clock } from './config/clock';
import { ConfigModule } from './config/config.module';
import { CoreModule } from './core/core.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { RealtimeModule, type RealtimeOptions } from './realtime/realtime.module';
import { RedisModule } from './redis/redis.module';
import { TicketsModule } from './tickets/tickets.module';

/** What an embedding application (or a test) may hand the app besides its configuration. */
export interface AppOptions extends RealtimeOptions {
  /** The clock behind token, session and ticket lifetimes. @default the system clock */
  clock?: Clock;
}

@Module({})
export class AppModule {
  /** @param options application hooks, such as a replacement `RoomPolicy` */
  static forRoot(config: AppConfig, options: AppOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config, options.clock),
        RedisModule,
        MetricsModule,
        CoreModule,
        RateLimitModule,
        BroadcastModule,
        AuthModule,
        TicketsModule,
        RealtimeModule.forRoot(options),
        HealthModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: HttpExceptionFilter }],
    };
  }
}
