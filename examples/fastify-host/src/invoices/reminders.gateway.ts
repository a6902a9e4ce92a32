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
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import type { SwitchboardSocket } from '@switchboard/nest';
import { IsString, Length, Matches } from 'class-validator';
import { InvoicesService } from './invoices.service';

/** `invoice.remind { invoiceId, message }` */
export class RemindCustomer {
  @IsString()
  @Matches(/^inv-[0-9]+$/)
  invoiceId!: string;

  @IsString()
  @Length(1, 280)
  message!: string;
}

/** Staff only: here, users whose id starts with `staff-`. */
@Injectable()
export class StaffGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToWs().getClient<SwitchboardSocket>().user.id.startsWith('staff-');
  }
}

@WebSocketGateway()
export class RemindersGateway {
  constructor(private readonly invoices: InvoicesService) {}

  @SubscribeMessage('invoice.remind')
  @UseGuards(StaffGuard)
  @UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }))
  async remind(@ConnectedSocket() socket: SwitchboardSocket, @MessageBody() body: RemindCustomer) {
    await this.invoices.remind(body.invoiceId, socket.user.id, body.message);
    return { sent: true, invoiceId: body.invoiceId };
  }
}
