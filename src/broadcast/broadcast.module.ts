import { Module } from '@nestjs/common';
import { RedisConnections } from '../redis/redis.connections';
import { Hub } from '../realtime/hub';
import { BroadcastController } from './broadcast.controller';
import { BroadcastService } from './broadcast.service';
import { Broker } from './broker.interface';
import { ClusterBus } from './cluster-bus';
import { LocalBroker } from './local.broker';
import { RedisBroker } from './redis.broker';

@Module({
  controllers: [BroadcastController],
  providers: [
    Hub,
    ClusterBus,
    BroadcastService,
    {
      provide: Broker,
      inject: [RedisConnections],
      useFactory: (redis: RedisConnections | null) =>
        redis ? new RedisBroker(redis) : new LocalBroker(),
    },
  ],
  exports: [BroadcastService, ClusterBus, Hub, Broker],
})
export class BroadcastModule {}
