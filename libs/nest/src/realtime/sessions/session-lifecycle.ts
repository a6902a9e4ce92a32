import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import {
  CloseCode,
  CloseReason,
  ErrorCode,
  ServerMessageType,
  type SessionExpiryData,
} from '@switchboard/protocol';
import { AuthService } from '../../auth/auth.service';
import { AppConfig } from '../../config/app-config';
import { Clock } from '../../config/clock';
import { TokenError } from '../../auth/token.errors';
import type { Connection } from '../../core/connection';
import { serverFrame } from '../../core/frames';
import { Hub } from '../../core/hub';
import { ClientError } from '../messages/client-error';

/**
 * A socket's session over time: `session.expiring` a minute before the token's `exp`, the `4002`
 * close at `exp` plus `JWT_CLOCK_TOLERANCE_S`, and `session.refresh`. One timer serves every socket: sockets wait in buckets by the tick
 * their next event is due, so 20,000 sockets cost 20,000 set entries, not 40,000 timers.
 */
@Injectable()
export class SessionLifecycle implements OnApplicationShutdown {
  private readonly buckets = new Map<number, Set<Connection>>();
  private readonly timer: NodeJS.Timeout;
  private readonly tickMs: number;
  private readonly warningMs: number;
  private nextTick: number;

  constructor(
    private readonly auth: AuthService,
    private readonly hub: Hub,
    clock: Clock,
    config: AppConfig,
  ) {
    this.tickMs = config.timings.sessionTickMs;
    this.warningMs = config.timings.expiryWarningMs;
    this.nextTick = Math.floor(clock.now() / this.tickMs);
    this.timer = setInterval(() => this.tick(clock.now()), this.tickMs);
    this.timer.unref();
  }

  /**
   * (Re)plans the socket's next session event from its current session. When less than
   * the expiry warning time (a minute) is left already (a short token at connect, or after `session.refresh`),
   * the warning is due at the next tick, right after the welcome or the `session.refreshed` reply.
   */
  schedule(connection: Connection): void {
    this.unschedule(connection);
    const dueAt = connection.expiryWarned
      ? this.auth.deadline(connection.session)
      : this.warningAt(connection);
    const tick = Math.max(this.nextTick, Math.ceil(dueAt / this.tickMs));
    connection.sessionTick = tick;
    let bucket = this.buckets.get(tick);
    if (bucket === undefined) {
      bucket = new Set();
      this.buckets.set(tick, bucket);
    }
    bucket.add(connection);
  }

  /** Forgets a closed socket. */
  unschedule(connection: Connection): void {
    const tick = connection.sessionTick;
    if (tick === 0) {
      return;
    }
    const bucket = this.buckets.get(tick);
    if (bucket?.delete(connection) && bucket.size === 0) {
      this.buckets.delete(tick);
    }
    connection.sessionTick = 0;
  }

  /**
   * Extends the socket's session with a fresh access token of the same user.
   *
   * @throws ClientError `forbidden` for a token that is invalid, expired, revoked or another user's.
   */
  async refresh(connection: Connection, token: string): Promise<SessionExpiryData> {
    let session;
    try {
      session = await this.auth.authenticate(token);
    } catch (error) {
      if (error instanceof TokenError) {
        throw new ClientError(ErrorCode.Forbidden, `token refused: ${error.message}`);
      }
      throw error;
    }
    if (session.userId !== connection.userId) {
      throw new ClientError(ErrorCode.Forbidden, 'the token belongs to another user');
    }
    // Closed while the token was verified: the hub and the scheduler have let go of the socket,
    // and re-keying or scheduling it now would hold it forever.
    connection.assertOpen();
    if (session.sessionId === connection.session.sessionId) {
      connection.session = session;
    } else {
      this.hub.rekey(connection, session);
    }
    connection.expiryWarned = false;
    this.schedule(connection);
    return { expiresAt: session.expiresAt };
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
    this.buckets.clear();
  }

  private tick(now: number): void {
    const current = Math.floor(now / this.tickMs);
    while (this.nextTick <= current) {
      // Advance first: a socket rescheduled while its bucket fires lands in a later bucket.
      const tick = this.nextTick++;
      const bucket = this.buckets.get(tick);
      if (bucket === undefined) {
        continue;
      }
      this.buckets.delete(tick);
      for (const connection of bucket) {
        connection.sessionTick = 0;
        this.fire(connection, now);
      }
    }
  }

  private fire(connection: Connection, now: number): void {
    if (!connection.open) {
      return;
    }
    if (this.auth.isExpired(connection.session, now)) {
      connection.close(CloseCode.SessionExpired, CloseReason.SessionExpired);
      return;
    }
    if (!connection.expiryWarned && now >= this.warningAt(connection)) {
      connection.expiryWarned = true;
      connection.send(
        serverFrame(ServerMessageType.SessionExpiring, {
          expiresAt: connection.session.expiresAt,
        } satisfies SessionExpiryData),
      );
    }
    this.schedule(connection);
  }

  /** A minute before the token's `exp` (the clock tolerance only delays the close). */
  private warningAt(connection: Connection): number {
    return connection.session.expiresAt - this.warningMs;
  }
}
