import { Module } from '@nestjs/common';
import { InvoicesController } from './invoices.controller';
import { InvoicesService } from './invoices.service';
import { RemindersGateway } from './reminders.gateway';

@Module({
  controllers: [InvoicesController],
  providers: [InvoicesService, RemindersGateway],
})
export class InvoicesModule {}
