import { Global, Module } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { storeProvider } from '../redis/redis.module';
import { Broker } from './broker/broker.interface';
import { MemoryBroker } from './broker/memory.broker';
import { RedisBroker } from './broker/redis.broker';
import { Hub } from './hub';
import { Node } from './node';

/**
 * The core every feature builds on: the hub (this instance's sockets), the broker (memory or
 * Redis) and the node that joins them. It imports no feature module; every feature may import it.
 */
@Global()
@Module({
  providers: [
    {
      provide: Hub,
      inject: [MetricsService],
      useFactory: (metrics: MetricsService): Hub => {
        const hub = new Hub();
        metrics.bindActiveConnections(() => hub.size);
        return hub;
      },
    },
    Node,
    storeProvider<Broker>(
      Broker,
      () => new MemoryBroker(),
      (redis, lease) => new RedisBroker(redis, lease.instanceId),
    ),
  ],
  exports: [Hub, Node, Broker],
})
export class CoreModule {}
