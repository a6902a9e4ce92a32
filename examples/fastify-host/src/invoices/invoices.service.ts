import { Injectable, NotFoundException } from '@nestjs/common';
import { BroadcastService } from '@switchboard/nest';

interface Invoice {
  id: string;
  customerId: string;
  dueDate: string;
}

/** The application's own service: staff remind customers of invoices, and customers see it live. */
@Injectable()
export class InvoicesService {
  private readonly invoices: ReadonlyMap<string, Invoice> = new Map([
    ['inv-7', { id: 'inv-7', customerId: 'carol', dueDate: '2027-01-31' }],
  ]);

  constructor(private readonly broadcast: BroadcastService) {}

  get(id: string): Invoice {
    const invoice = this.invoices.get(id);
    if (invoice === undefined) {
      throw new NotFoundException(`no invoice ${id}`);
    }
    return invoice;
  }

  /** Tells the customer, on every instance and every tab. */
  async remind(id: string, from: string, message: string): Promise<void> {
    const invoice = this.get(id);
    await this.broadcast.toUser(invoice.customerId, 'invoice.reminder', {
      id,
      dueDate: invoice.dueDate,
      from,
      message,
    });
  }
}
