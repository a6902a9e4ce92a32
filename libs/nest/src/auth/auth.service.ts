import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { Clock } from '../config/clock';
import { Revocations } from './revocations.service';
import type { Session } from '../core/session';
import { TokenError } from './token.errors';
import { MAX_TOKEN_LIFETIME_S, TokenVerifier } from './token-verifier.service';

/** Turns an access token into a live session: signature, claims, expiry and revocation. */
@Injectable()
export class AuthService {
  private readonly graceMs: number;
  private readonly anonymousTtlMs: number;

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly revocations: Revocations,
    private readonly clock: Clock,
    config: AppConfig,
  ) {
    this.graceMs = config.jwt.clockToleranceS * 1000;
    this.anonymousTtlMs = config.anonymous.ttlS * 1000;
  }

  /** Checks the token alone: signature, algorithm and claims. @throws TokenError */
  verify(token: string): Promise<Session> {
    return this.verifier.verify(token);
  }

  /** The token's verification is not kept: its next use verifies it again. */
  forget(token: string): void {
    this.verifier.forget(token);
  }

  /** @throws StoreUnavailableError */
  isRevoked(session: Session): Promise<boolean> {
    return this.revocations.isRevoked(session.sessionId);
  }

  /** The ids among `sessionIds` whose session is revoked. @throws StoreUnavailableError */
  revokedAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    return this.revocations.revokedAmong(sessionIds);
  }

  /** The token, and its session not revoked. @throws TokenError; StoreUnavailableError */
  async authenticate(token: string): Promise<Session> {
    const session = await this.verifier.verify(token);
    if (await this.isRevoked(session)) {
      throw new TokenError('revoked', 'session revoked');
    }
    return session;
  }

  /** Whether the session's token is past its `exp` (plus the allowed clock skew). */
  isExpired(session: Session, now = this.clock.now()): boolean {
    return now >= this.deadline(session);
  }

  /** The moment the server stops honouring the session, in ms since the epoch. */
  deadline(session: Session): number {
    return session.expiresAt + this.graceMs;
  }

  /** Revokes the session everywhere until its token would have expired anyway. */
  async revoke(session: Session): Promise<void> {
    // Verified tokens expire within MAX_TOKEN_LIFETIME_S; the cap keeps any TTL one Redis accepts.
    // An anonymous identity is renewed on use: a cookie renewed before the logout lives until
    // ANONYMOUS_TTL_S from now at the latest.
    const until = Math.max(
      this.deadline(session),
      session.anonymous === true ? this.clock.now() + this.anonymousTtlMs + this.graceMs : 0,
    );
    const ttlMs = Math.min(
      Math.max(1000, until - this.clock.now()),
      (MAX_TOKEN_LIFETIME_S + this.graceMs / 1000) * 1000,
    );
    await this.revocations.revoke(session.sessionId, ttlMs);
  }
}
