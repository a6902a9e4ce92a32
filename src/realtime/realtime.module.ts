import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { TicketsModule } from '../tickets/tickets.module';
import { ConnectionRegistry } from './connection-registry.interface';
import { HandshakeObserver } from './handshake.observer';
import { Hub } from './hub';
import { MemoryConnectionRegistry } from './memory-connection-registry';
import { MessageRouter } from './message-router';
import { RealtimeGateway } from './realtime.gateway';
import { WsGuard } from './ws.guard';

@Module({
  imports: [AuthModule, TicketsModule],
  providers: [
    Hub,
    WsGuard,
    HandshakeObserver,
    MessageRouter,
    RealtimeGateway,
    { provide: ConnectionRegistry, useClass: MemoryConnectionRegistry },
  ],
  exports: [Hub],
})
export class RealtimeModule {}
