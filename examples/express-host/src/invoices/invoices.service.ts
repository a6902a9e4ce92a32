import { Injectable, NotFoundException } from '@nestjs/common';
import { BroadcastService } from '@switchboard/nest';

export interface Invoice {
  id: string;
  customerId: string;
  amountCents: number;
  paid: boolean;
}

/** The application's own domain service: paying an invoice tells its customer, live. */
@Injectable()
export class InvoicesService {
  private readonly invoices = new Map<string, Invoice>([
    ['inv-1', { id: 'inv-1', customerId: 'alice', amountCents: 12_500, paid: false }],
    ['inv-2', { id: 'inv-2', customerId: 'bob', amountCents: 4_000, paid: false }],
  ]);

  constructor(private readonly broadcast: BroadcastService) {}

  find(id: string): Invoice {
    const invoice = this.invoices.get(id);
    if (invoice === undefined) {
      throw new NotFoundException(`no invoice ${id}`);
    }
    return invoice;
  }

  async pay(id: string): Promise<Invoice> {
    const invoice = this.find(id);
    invoice.paid = true;
    // Every open tab of the customer, on whichever instance it is connected.
    await this.broadcast.toUser(invoice.customerId, 'invoice.paid', {
      id: invoice.id,
      amountCents: invoice.amountCents,
    });
    // And everyone watching the invoice's room.
    await this.broadcast.toRoom(`invoice.${invoice.id}`, 'invoice.updated', { id, paid: true });
    return invoice;
  }
}
