import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { Clock } from '../config/clock';
import { Instance } from '../config/instance';
import { ErrorTracker } from '../errors/error-tracker';
import { MetricsService } from '../metrics/metrics.service';
import { EmbeddedLease } from './embedded-lease';
import { InstanceLease } from './instance-lease';
import { Lease } from './lease';
import { RedisConnections } from './redis.connections';

/**
 * The Redis connections and this instance's `Lease`. In cluster mode (`REDIS_URL` set) the lease
 * is an `InstanceLease` on the connections; in embedded mode `RedisConnections` is `null`, every
 * store uses its in-memory implementation, and the lease is an `EmbeddedLease`.
 */
@Global()
@Module({
  providers: [
    {
      provide: RedisConnections,
      inject: [AppConfig, MetricsService, ErrorTracker],
      useFactory: (config: AppConfig, metrics: MetricsService, errors: ErrorTracker) => {
        if (!config.redisUrl) {
          return null;
        }
        const redis = new RedisConnections(
          config.redisUrl,
          config.redisPrefix,
          {
            intervalMs: config.timings.redisProbeIntervalMs,
            timeoutMs: config.timings.redisProbeTimeoutMs,
          },
          config.redisMode,
        );
        metrics.bindRedisUp(() => redis.up);
        redis.onError((kind) => metrics.redisError(kind));
        redis.onOutage((error) => errors.capture(error, { component: 'redis' }));
        return redis;
      },
    },
    {
      provide: Lease,
      inject: [RedisConnections, Instance, AppConfig],
      useFactory: (redis: RedisConnections | null, instance: Instance, config: AppConfig): Lease =>
        redis
          ? new InstanceLease(
              redis,
              instance.id,
              config.ws.heartbeatMs,
              config.timings.leaseClaimMs,
            )
          : new EmbeddedLease(instance.id),
    },
    // The same object under the Redis class, for tests that drive its renewals in cluster mode;
    // in embedded mode it is the EmbeddedLease, so the code injects `Lease`.
    { provide: InstanceLease, useExisting: Lease },
  ],
  exports: [RedisConnections, Lease, InstanceLease],
})
export class RedisModule {}

/**
 * A provider for a shared store: the Redis implementation in cluster mode, the in-memory one
 * otherwise. One place decides, for every store.
 */
export function storeProvider<T>(
  token: symbol,
  memory: (clock: Clock, config: AppConfig) => T,
  redis: (connections: RedisConnections, lease: Lease, config: AppConfig) => T,
) {
  return {
    provide: token,
    inject: [RedisConnections, Lease, Clock, AppConfig],
    useFactory: (
      connections: RedisConnections | null,
      lease: Lease,
      clock: Clock,
      config: AppConfig,
    ): T => (connections ? redis(connections, lease, config) : memory(clock, config)),
  };
}
