import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  UseGuards,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import type { SwitchboardSocket } from '@switchboard/nest';
import { IsString, Length, Matches } from 'class-validator';
import { InvoicesService } from './invoices.service';

/** `invoice.watch { invoiceId }`: the client follows an invoice it may see. */
export class WatchInvoice {
  @IsString()
  @Matches(/^inv-[0-9]+$/)
  invoiceId!: string;

  @IsString()
  @Length(0, 200)
  note = '';
}

/** Only the invoice's customer may watch it. */
@Injectable()
export class InvoiceOwnerGuard implements CanActivate {
  constructor(private readonly invoices: InvoicesService) {}

  canActivate(context: ExecutionContext): boolean {
    const socket = context.switchToWs().getClient<SwitchboardSocket>();
    const { invoiceId } = context.switchToWs().getData<{ invoiceId?: unknown }>();
    if (typeof invoiceId !== 'string') {
      return true; // the pipe names the problem
    }
    try {
      return this.invoices.find(invoiceId).customerId === socket.user.id;
    } catch {
      return false;
    }
  }
}

/** The application's own message types, on the sockets Switchboard authenticated. */
@WebSocketGateway()
export class InvoicesGateway implements OnGatewayConnection {
  readonly connected = new Set<string>();

  constructor(private readonly invoices: InvoicesService) {}

  handleConnection(socket: SwitchboardSocket): void {
    this.connected.add(socket.id);
  }

  @SubscribeMessage('invoice.watch')
  @UseGuards(InvoiceOwnerGuard)
  @UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }))
  async watch(@ConnectedSocket() socket: SwitchboardSocket, @MessageBody() body: WatchInvoice) {
    const invoice = this.invoices.find(body.invoiceId);
    await socket.join(`invoice.${invoice.id}`);
    return { invoiceId: invoice.id, paid: invoice.paid, watcher: socket.user.id };
  }
}
