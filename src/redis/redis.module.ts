import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { Clock } from '../config/clock';
import { Instance } from '../config/instance';
import { MetricsService } from '../metrics/metrics.service';
import { InstanceLease } from './instance-lease';
import { RedisConnections } from './redis.connections';

/**
 * The Redis connections and this instance's lease, in cluster mode (`REDIS_URL` set). In
 * embedded mode both providers are `null` and every store uses its in-memory implementation.
 */
@Global()
@Module({
  providers: [
    {
      provide: RedisConnections,
      inject: [AppConfig, MetricsService],
      useFactory: (config: AppConfig, metrics: MetricsService) => {
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
        return redis;
      },
    },
    {
      provide: InstanceLease,
      inject: [RedisConnections, Instance, AppConfig],
      useFactory: (redis: RedisConnections | null, instance: Instance, config: AppConfig) =>
        redis
          ? new InstanceLease(
              redis,
              instance.id,
              config.ws.heartbeatMs,
              config.timings.leaseClaimMs,
            )
          : null,
    },
  ],
  exports: [RedisConnections, InstanceLease],
})
export class RedisModule {}

/**
 * A provider for a shared store: the Redis implementation in cluster mode, the in-memory one
 * otherwise. One place decides, for every store.
 */
export function storeProvider<T>(
  token: symbol,
  memory: (clock: Clock, config: AppConfig) => T,
  redis: (connections: RedisConnections, lease: InstanceLease, config: AppConfig) => T,
) {
  return {
    provide: token,
    inject: [RedisConnections, InstanceLease, Clock, AppConfig],
    useFactory: (
      connections: RedisConnections | null,
      lease: InstanceLease | null,
      clock: Clock,
      config: AppConfig,
    ): T => (connections && lease ? redis(connections, lease, config) : memory(clock, config)),
  };
}
