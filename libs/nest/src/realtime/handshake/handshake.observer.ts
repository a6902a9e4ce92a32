import type { IncomingMessage } from 'node:http';
import { Injectable, Logger } from '@nestjs/common';
import { clientIp } from '../../common/client-ip';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../metrics/metrics.service';
import type { HandshakeDecision } from './ws.guard';
import type { TransportKind } from '@switchboard/protocol';

/** Counts every handshake by outcome, and logs the refused ones. */
@Injectable()
export class HandshakeObserver {
  private readonly logger = new Logger(HandshakeObserver.name);

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  decided(
    decision: HandshakeDecision,
    req: IncomingMessage,
    transport: TransportKind = 'websocket',
  ): void {
    if (decision.kind === 'accept') {
      this.metrics.handshake('accepted', transport);
      return;
    }
    if (decision.outcome !== null) {
      this.metrics.handshake(decision.outcome, transport);
    }
    // Refusals can come in floods: debug level. The URL (with its ticket) is never logged.
    this.logger.debug({
      msg: 'handshake refused',
      transport,
      ip: clientIp(req, this.config.trustProxy),
      ...(decision.kind === 'reject'
        ? { status: decision.status, outcome: decision.outcome }
        : { code: decision.code, outcome: decision.outcome }),
    });
  }

  /**
   * A handshake not decided within `HANDSHAKE_TIMEOUT_MS` (its checks waited on a busy loop or a
   * slow store): the caller drops its connection, and the client sees a reset.
   */
  timedOut(req: IncomingMessage, transport: TransportKind = 'websocket'): void {
    this.metrics.handshake('timeout', transport);
    this.logger.debug({
      msg: 'handshake dropped: not decided in time',
      transport,
      ip: clientIp(req, this.config.trustProxy),
    });
  }
}
