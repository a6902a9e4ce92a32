import { Module } from '@nestjs/common';
import { InvoicesController } from './invoices.controller';
import { InvoiceOwnerGuard, InvoicesGateway } from './invoices.gateway';
import { InvoicesService } from './invoices.service';

@Module({
  controllers: [InvoicesController],
  providers: [InvoicesService, InvoicesGateway, InvoiceOwnerGuard],
})
export class InvoicesModule {}
