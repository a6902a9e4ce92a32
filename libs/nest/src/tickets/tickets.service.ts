import { randomToken } from '../common/random';
import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { sha256 } from '../common/sha256';
import type { Session } from '../core/session';
import { RetryableHttpException } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { Lease } from '../redis/lease';
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
    private readonly lease: Lease,
  ) {}

  /**
   * Issues a single-use ticket for the session.
   *
   * `TICKETS_PER_MINUTE` is enforced in front of it, by `HttpThrottlerGuard` on the route.
   *
   * @throws RetryableHttpException 503 until this instance's state, and after a data loss every
   *   instance's, is written back to Redis; StoreUnavailableError.
   */
  async issue(session: Session): Promise<{ ticket: string; expiresIn: number }> {
    if (this.lease.restoring) {
      // Until every instance has written its revocations back, a revoked session could get a ticket.
      throw new RetryableHttpException(
        HttpStatus.SERVICE_UNAVAILABLE,
        'instances are writing their state back to Redis; retry shortly',
        RESTORING_RETRY_AFTER_S,
      );
    }
    const ticket = randomToken(TICKET_BYTES);
    const expiresIn = this.config.ticketTtlS;
    const ttlMs = expiresIn * 1000;
    await this.store.put(
      sha256(ticket),
      { ...session, ticketExpiresAt: Date.now() + ttlMs },
      ttlMs,
    );
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

  /**
   * Makes a redeemed ticket good again until it would have expired: for an upgrade refused with
   * `503` after the ticket was taken (a store the later checks need was unreachable), so that the
   * client's retry with the same ticket works (docs/protocol.md). A ticket already expired stays spent.
   *
   * @throws StoreUnavailableError
   */
  async giveBack(ticket: string, claims: TicketClaims): Promise<void> {
    const ttlMs = claims.ticketExpiresAt - Date.now();
    if (ttlMs > 0) {
      await this.store.put(sha256(ticket), claims, ttlMs);
    }
  }
}
