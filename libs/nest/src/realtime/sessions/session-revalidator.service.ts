import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { CloseCode, CloseReason } from '@switchboard/protocol';
import { AuthService } from '../../auth/auth.service';
import { AppConfig } from '../../config/app-config';
import { Hub } from '../../core/hub';

/**
 * The safety net behind the expiry timers (`SessionLifecycle`) and the logout broadcast: every
 * `SESSION_REVALIDATE_MS` each open session is checked for expiry and revocation.
 */
@Injectable()
export class SessionRevalidator implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SessionRevalidator.name);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly hub: Hub,
    private readonly auth: AuthService,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.revalidate(), this.config.ws.sessionRevalidateMs);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async revalidate(): Promise<void> {
    for (const connection of this.hub.all()) {
      if (this.auth.isExpired(connection.session)) {
        connection.close(CloseCode.SessionExpired, CloseReason.SessionExpired);
      }
    }
    try {
      const revoked = await this.auth.revokedAmong(this.hub.sessionIds());
      for (const sessionId of revoked) {
        for (const connection of [...this.hub.ofSession(sessionId)]) {
          connection.close(CloseCode.SessionRevoked, CloseReason.SessionRevoked);
        }
      }
    } catch (error) {
      this.logger.warn({ msg: 'session revalidation skipped: store unavailable', err: error });
    }
  }
}
