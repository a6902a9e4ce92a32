import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { storeProvider } from '../redis/redis.module';
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

@Module({})
export class RealtimeModule {
  static forRoot(options: RealtimeOptions = {}): DynamicModule {
    return {
      module: RealtimeModule,
      imports: [AuthModule, TicketsModule],
      providers: [
        WsGuard,
        HandshakeObserver,
        MessageRouter,
        RoomsService,
        SessionLifecycle,
        DrainService,
        RealtimeGateway,
        { provide: RoomPolicy, useClass: options.roomPolicy ?? ClaimsRoomPolicy },
        storeProvider<ConnectionRegistry>(
          ConnectionRegistry,
          () => new MemoryConnectionRegistry(),
          (redis) => new RedisConnectionRegistry(redis),
        ),
        storeProvider<PresenceStore>(
          PresenceStore,
          () => new MemoryPresenceStore(),
          (redis) => new RedisPresenceStore(redis),
        ),
      ],
      exports: [DrainService],
    };
  }
}
