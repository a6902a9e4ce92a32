import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { BroadcastModule } from '../broadcast/broadcast.module';
import { Instance } from '../config/instance';
import { RedisConnections } from '../redis/redis.connections';
import { TicketsModule } from '../tickets/tickets.module';
import { ConnectionRegistry } from './connection-registry.interface';
import { HandshakeObserver } from './handshake.observer';
import { MemoryConnectionRegistry } from './memory-connection-registry';
import { MessageRouter } from './message-router';
import { RedisConnectionRegistry } from './redis-connection-registry';
import { RealtimeGateway } from './realtime.gateway';
import { WsGuard } from './ws.guard';

@Module({
  imports: [AuthModule, TicketsModule, BroadcastModule],
  providers: [
    WsGuard,
    HandshakeObserver,
    MessageRouter,
    RealtimeGateway,
    {
      provide: ConnectionRegistry,
      inject: [RedisConnections, Instance],
      useFactory: (redis: RedisConnections | null, instance: Instance) =>
        redis ? new RedisConnectionRegistry(redis, instance.id) : new MemoryConnectionRegistry(),
    },
  ],
})
export class RealtimeModule {}
