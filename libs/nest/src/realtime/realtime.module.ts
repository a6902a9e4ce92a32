import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuthModule } from '../auth/auth.module';
import { storeProvider } from '../redis/redis.module';
import { TicketsModule } from '../tickets/tickets.module';
import { ConnectionRegistry } from './connections/connection-registry.interface';
import { ConnectionRegistrar } from './connections/connection-registrar';
import { DrainService } from './connections/drain.service';
import { Heartbeat } from './connections/heartbeat.service';
import { SessionRevalidator } from './sessions/session-revalidator.service';
import { HandshakeObserver } from './handshake/handshake.observer';
import { MemoryConnectionRegistry } from './connections/memory-connection-registry.store';
import { MessageRouter } from './message-router';
import { MemoryPresenceStore } from './presence/memory-presence.store';
import { PresenceBatches } from './presence/presence-batches';
import { AppConfig } from '../config/app-config';
import { SseEndpoint } from './sse/sse-endpoint';
import { AdminTokenGuard } from './trace/admin-token.guard';
import { TraceController } from './trace/trace.controller';
import { Tracer } from './trace/tracer';
import { UnauthenticatedConnections } from './handshake/unauthenticated-connections';
import { PresenceStore } from './presence/presence-store.interface';
import { RedisPresenceStore } from './presence/redis-presence.store';
import { RealtimeGateway } from './realtime.gateway';
import { RedisConnectionRegistry } from './connections/redis-connection-registry.store';
import { ClaimsRoomPolicy, RoomPolicy } from './rooms/room-policy';
import { RoomsService } from './rooms/rooms.service';
import { SessionLifecycle } from './sessions/session-lifecycle';
import { WsGuard } from './handshake/ws.guard';
import { WsAdapterInstaller } from './handshake/ws.adapter';
import { HostGateways } from './host/host-gateways';

export interface RealtimeOptions {
  /** Who may join which room. @default ClaimsRoomPolicy (the token's `rooms` claim) */
  roomPolicy?: Type<RoomPolicy>;
  /** Whether `GET /admin/trace` exists: only with an `ADMIN_TOKEN` (else `404`). */
  adminApi?: boolean;
}

@Module({})
export class RealtimeModule {
  static forRoot(options: RealtimeOptions = {}): DynamicModule {
    return {
      module: RealtimeModule,
      imports: [AuthModule, TicketsModule, DiscoveryModule],
      controllers: options.adminApi === true ? [TraceController] : [],
      providers: [
        Tracer,
        AdminTokenGuard,
        WsGuard,
        HandshakeObserver,
        MessageRouter,
        RoomsService,
        PresenceBatches,
        SseEndpoint,
        {
          // One count for the shared HTTP server, whichever transport a connection becomes.
          provide: UnauthenticatedConnections,
          inject: [AppConfig],
          useFactory: (config: AppConfig) =>
            new UnauthenticatedConnections(config.limits.maxUnauthenticatedPerIp),
        },
        SessionLifecycle,
        DrainService,
        ConnectionRegistrar,
        Heartbeat,
        SessionRevalidator,
        RealtimeGateway,
        HostGateways,
        WsAdapterInstaller,
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
