import type { IncomingMessage } from 'node:http';
import { Injectable, Logger } from '@nestjs/common';
import { clientIp } from '../common/client-ip';
import { AppConfig } from '../config/app-config';
import type { HandshakeDecision } from './ws.guard';

/** Records every handshake decision that does not end in an accepted socket. */
@Injectable()
export class HandshakeObserver {
  private readonly logger = new Logger('Handshake');

  constructor(private readonly config: AppConfig) {}

  decided(decision: HandshakeDecision, req: IncomingMessage): void {
    if (decision.kind === 'accept') {
      return;
    }
    // Refusals can come in floods: debug level. The URL (with its ticket) is never logged.
    this.logger.debug({
      msg: 'handshake refused',
      ip: clientIp(req, this.config.trustProxy),
      ...(decision.kind === 'reject'
        ? { status: decision.status, outcome: decision.outcome }
        : { code: decision.code, outcome: decision.outcome }),
    });
  }
}
