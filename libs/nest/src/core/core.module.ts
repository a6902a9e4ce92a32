import { Global, Module } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { storeProvider } from '../redis/redis.module';
import { Broker, streamOptions } from './broker/broker.interface';
import { MemoryBroker } from './broker/memory.broker';
import { RedisBroker } from './broker/redis.broker';
import { AdmissionGate } from './admission-gate';
import { Hub } from './hub';
import { Node } from './node';
import { Streams } from './streams';

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
        metrics.bindActiveConnections((transport, kind) => hub.countOf(transport, kind));
        return hub;
      },
    },
    Node,
    Streams,
    AdmissionGate,
    storeProvider<Broker>(
      Broker,
      (clock, config) => new MemoryBroker(streamOptions(config.history), () => clock.now()),
      (redis, lease, config) =>
        new RedisBroker(redis, lease.instanceId, streamOptions(config.history)),
    ),
  ],
  exports: [Hub, Node, Streams, Broker, AdmissionGate],
})
export class CoreModule {}
