import { Injectable } from '@nestjs/common';
import { CloseCode, ErrorCode, ServerMessageType } from '@app/protocol';
import { AuthService } from '../auth/auth.service';
import { TokenError } from '../auth/token.errors';
import type { Connection } from './connection';
import { serverFrame } from './frames';
import { Hub } from './hub';
import { ClientError } from './messages/client-error';

/** `session.expiring` goes out this long before the session ends. */
export const EXPIRY_WARNING_MS = 60_000;
/** setTimeout's ceiling; longer sessions are caught by the periodic revalidation. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A socket's session over time: the expiry warning, the `4002` close, and `session.refresh`. */
@Injectable()
export class SessionLifecycle {
  constructor(
    private readonly auth: AuthService,
    private readonly hub: Hub,
  ) {}

  /** `session.expiring` a minute before the session ends, and `4002` at the end itself. */
  schedule(connection: Connection): void {
    connection.clearTimers();
    const untilEnd = this.auth.deadline(connection.session) - Date.now();
    if (untilEnd > MAX_TIMER_MS) {
      return;
    }
    if (untilEnd > EXPIRY_WARNING_MS) {
      connection.timers.push(
        setTimeout(() => {
          connection.send(
            serverFrame(ServerMessageType.SessionExpiring, {
              expiresAt: connection.session.expiresAt,
            }),
          );
        }, untilEnd - EXPIRY_WARNING_MS),
      );
    }
    connection.timers.push(
      setTimeout(
        () => connection.close(CloseCode.SessionExpired, 'session expired'),
        Math.max(0, untilEnd),
      ),
    );
  }

  /**
   * Extends the socket's session with a fresh access token of the same user.
   *
   * @throws ClientError `forbidden` for a token that is invalid, expired, revoked or another user's.
   */
  async refresh(connection: Connection, token: string): Promise<{ expiresAt: number }> {
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
    if (session.sessionId === connection.session.sessionId) {
      connection.session = session;
    } else {
      this.hub.rekey(connection, session);
    }
    this.schedule(connection);
    return { expiresAt: session.expiresAt };
  }
}
