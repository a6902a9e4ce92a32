import { randomToken } from '../common/random';
import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { sha256 } from '../common/sha256';
import type { Session } from '../core/session';
import { RetryableHttpException } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { InstanceLease } from '../redis/instance-lease';
import { type TicketClaims, TicketStore } from './ticket-store.interface';

/** 256 bits from the CSPRNG; the protocol promises at least 128. */
const TICKET_BYTES = 32;
/** A ticket is at most this long, so a longer query value is refused before hashing. */
const MAX_TICKET_LENGTH = 128;
const RESTORING_RETRY_AFTER_S = 1;

@Injectable()
export class TicketsService {
  constructor(
    @Inject(TicketStore) private readonly store: TicketStore,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    @Inject(InstanceLease) private readonly lease: InstanceLease | null,
  ) {}

  /**
   * Issues a single-use ticket for the session.
   *
   * `TICKETS_PER_MINUTE` is enforced in front of it, by `HttpThrottlerGuard` on the route.
   *
   * @throws RetryableHttpException 503 while this instance writes its state back to Redis;
   *   StoreUnavailableError.
   */
  async issue(session: Session): Promise<{ ticket: string; expiresIn: number }> {
    if (this.lease?.restoring) {
      // Until revocations are written back, a revoked session could get a ticket.
      throw new RetryableHttpException(
        HttpStatus.SERVICE_UNAVAILABLE,
        'this instance is writing its state back to Redis; retry shortly',
        RESTORING_RETRY_AFTER_S,
      );
    }
    const ticket = randomToken(TICKET_BYTES);
    const expiresIn = this.config.ticketTtlS;
    await this.store.put(sha256(ticket), session, expiresIn * 1000);
    this.metrics.ticketIssued();
    return { ticket, expiresIn };
  }

  /**
   * Redeems a ticket: the claims, once; null for an unknown, expired or used ticket.
   *
   * @throws StoreUnavailableError
   */
  async redeem(ticket: string): Promise<TicketClaims | null> {
    if (ticket.length === 0 || ticket.length > MAX_TICKET_LENGTH) {
      this.metrics.ticketRedeemed(false);
      return null;
    }
    const claims = await this.store.take(sha256(ticket));
    this.metrics.ticketRedeemed(claims !== null);
    return claims;
  }
}
