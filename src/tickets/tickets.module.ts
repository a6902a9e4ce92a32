import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { MemoryTicketStore } from './memory-ticket.store';
import { TicketStore } from './ticket-store.interface';
import { TicketsController } from './tickets.controller';
import { TicketsService } from './tickets.service';

@Module({
  imports: [AuthModule],
  controllers: [TicketsController],
  providers: [TicketsService, { provide: TicketStore, useClass: MemoryTicketStore }],
  exports: [TicketsService],
})
export class TicketsModule {}
