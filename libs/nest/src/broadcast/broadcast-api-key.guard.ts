import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  NotFoundException,
} from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerMatches } from '../common/bearer';
import { BearerChallengeException } from '../common/errors';
import { AppConfig } from '../config/app-config';

/** The `401` message of a broadcast API call without the key. */
export const BROADCAST_KEY_REFUSAL = 'missing or wrong Authorization: Bearer <BROADCAST_API_KEY>';

/**
 * The broadcast HTTP API's key check, on its controller: it runs on the route the router matched,
 * however the path was spelled (`/api/%62roadcast`, an absolute URL, a fragment), and on any HTTP
 * adapter. `401` with `WWW-Authenticate: Bearer` unless the request carries exactly
 * `Authorization: Bearer <BROADCAST_API_KEY>`. Guards run before pipes, so a caller without the key
 * learns nothing of the body's schema.
 *
 * Without a key the route does not exist: `SwitchboardModule.forRoot` does not register the
 * controller, and where the key is only known later (`forRootAsync`) this guard answers `404` as
 * the router does for an unknown route.
 */
@Injectable()
export class BroadcastApiKeyGuard implements CanActivate {
  private readonly key: Buffer;

  constructor(config: AppConfig) {
    this.key = Buffer.from(config.broadcastApiKey ?? '');
  }

  canActivate(context: ExecutionContext): boolean {
    const { headers } = context.switchToHttp().getRequest<{ headers: IncomingHttpHeaders }>();
    if (this.key.length === 0) {
      throw new NotFoundException('Cannot POST /api/broadcast');
    }
    if (!this.allows(headers.authorization)) {
      throw new BearerChallengeException(BROADCAST_KEY_REFUSAL);
    }
    return true;
  }

  /** Whether the `Authorization` header carries the key. */
  allows(authorization: string | string[] | undefined): boolean {
    return this.key.length > 0 && bearerMatches(authorization, this.key);
  }
}
