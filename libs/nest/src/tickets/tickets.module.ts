import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { storeProvider } from '../redis/redis.module';
import { MemoryTicketStore } from './memory-ticket.store';
import { RedisTicketStore } from './redis-ticket.store';
import { TicketStore } from './ticket-store.interface';
import { TicketsController } from './tickets.controller';
import { TicketsService } from './tickets.service';

@Module({
  imports: [AuthModule],
  controllers: [TicketsController],
  providers: [
    TicketsService,
    storeProvider<TicketStore>(
      TicketStore,
      (clock) => new MemoryTicketStore(clock),
      (redis) => new RedisTicketStore(redis),
    ),
  ],
  exports: [TicketsService],
})
export class TicketsModule {}
