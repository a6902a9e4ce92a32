import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { Instance } from '../config/instance';
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
      inject: [AppConfig],
      useFactory: (config: AppConfig) =>
        config.redisUrl ? new RedisConnections(config.redisUrl, config.redisPrefix) : null,
    },
    {
      provide: InstanceLease,
      inject: [RedisConnections, Instance, AppConfig],
      useFactory: (redis: RedisConnections | null, instance: Instance, config: AppConfig) =>
        redis ? new InstanceLease(redis, instance.id, config.ws.heartbeatMs) : null,
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
  memory: () => T,
  redis: (connections: RedisConnections, lease: InstanceLease) => T,
) {
  return {
    provide: token,
    inject: [RedisConnections, InstanceLease],
    useFactory: (connections: RedisConnections | null, lease: InstanceLease | null): T =>
      connections && lease ? redis(connections, lease) : memory(),
  };
}
