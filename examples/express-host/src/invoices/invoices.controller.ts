import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { type Invoice, InvoicesService } from './invoices.service';

@Controller('invoices')
export class InvoicesController {
  constructor(private readonly invoices: InvoicesService) {}

  @Post(':id/pay')
  @HttpCode(200)
  pay(@Param('id') id: string): Promise<Invoice> {
    return this.invoices.pay(id);
  }
}
