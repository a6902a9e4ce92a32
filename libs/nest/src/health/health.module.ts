import { type DynamicModule, Module } from '@nestjs/common';
import { HealthIndicatorService, TerminusModule } from '@nestjs/terminus';
import { Lease } from '../redis/lease';
import { RedisConnections } from '../redis/redis.connections';
import { HealthController } from './health.controller';
import {
  EmbeddedRedisHealthIndicator,
  RedisConnectionsHealthIndicator,
  RedisHealthIndicator,
} from './redis.health';
import { SwitchboardHealthIndicator } from './switchboard.health';
import { WsHealthIndicator } from './ws.health';

/** `GET /health/live` and `/health/ready` (unless the host serves its own), and the indicator. */
@Module({})
export class HealthModule {
  static forRoot(options: { routes: boolean }): DynamicModule {
    return {
      module: HealthModule,
      // Readiness failures are expected (drain, Redis outage) and answered with 503; no error logs.
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: options.routes ? [HealthController] : [],
      providers: [
        WsHealthIndicator,
        {
          provide: RedisHealthIndicator,
          inject: [HealthIndicatorService, RedisConnections, Lease],
          useFactory: (
            indicators: HealthIndicatorService,
            redis: RedisConnections | null,
            lease: Lease,
          ): RedisHealthIndicator =>
            redis
              ? new RedisConnectionsHealthIndicator(indicators, redis, lease)
              : new EmbeddedRedisHealthIndicator(indicators),
        },
        SwitchboardHealthIndicator,
      ],
      exports: [SwitchboardHealthIndicator],
    };
  }
}
