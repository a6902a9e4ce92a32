import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { BroadcastModule } from '../broadcast/broadcast.module';
import { Instance } from '../config/instance';
import { RedisConnections } from '../redis/redis.connections';
import { TicketsModule } from '../tickets/tickets.module';
import { ConnectionRegistry } from './connection-registry.interface';
import { DrainService } from './drain.service';
import { HandshakeObserver } from './handshake.observer';
import { MemoryConnectionRegistry } from './memory-connection-registry';
import { MessageRouter } from './message-router';
import { MemoryPresenceStore } from './presence/memory-presence.store';
import { PresenceStore } from './presence/presence-store.interface';
import { RedisPresenceStore } from './presence/redis-presence.store';
import { RealtimeGateway } from './realtime.gateway';
import { RedisConnectionRegistry } from './redis-connection-registry';
import { ClaimsRoomPolicy, RoomPolicy } from './rooms/room-policy';
import { RoomsService } from './rooms/rooms.service';
import { SessionLifecycle } from './session-lifecycle';
import { WsGuard } from './ws.guard';

export interface RealtimeOptions {
  /** Who may join which room. @default ClaimsRoomPolicy (the token's `rooms` claim) */
  roomPolicy?: Type<RoomPolicy>;
}

/** Stores that name their instance: Redis in cluster mode, memory otherwise. */
function instanceStore<T>(
  token: symbol,
  memory: () => T,
  redis: (r: RedisConnections, instanceId: string) => T,
) {
  return {
    provide: token,
    inject: [RedisConnections, Instance],
    useFactory: (connections: RedisConnections | null, instance: Instance): T =>
      connections ? redis(connections, instance.id) : memory(),
  };
}

@Module({})
export class RealtimeModule {
  static forRoot(options: RealtimeOptions = {}): DynamicModule {
    return {
      module: RealtimeModule,
      imports: [AuthModule, TicketsModule, BroadcastModule],
      providers: [
        WsGuard,
        HandshakeObserver,
        MessageRouter,
        RoomsService,
        SessionLifecycle,
        DrainService,
        RealtimeGateway,
        { provide: RoomPolicy, useClass: options.roomPolicy ?? ClaimsRoomPolicy },
        instanceStore<ConnectionRegistry>(
          ConnectionRegistry,
          () => new MemoryConnectionRegistry(),
          (redis, id) => new RedisConnectionRegistry(redis, id),
        ),
        instanceStore<PresenceStore>(
          PresenceStore,
          () => new MemoryPresenceStore(),
          (redis, id) => new RedisPresenceStore(redis, id),
        ),
      ],
      exports: [DrainService],
    };
  }
}
