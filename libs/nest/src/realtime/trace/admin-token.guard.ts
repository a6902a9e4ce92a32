import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  NotFoundException,
} from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerMatches } from '../../common/bearer';
import { BearerChallengeException } from '../../common/errors';
import { AppConfig } from '../../config/app-config';

/**
 * `ADMIN_TOKEN` on the admin routes, checked on the route the router matched: `401` with
 * `WWW-Authenticate: Bearer` without exactly `Authorization: Bearer <ADMIN_TOKEN>`. Without a token
 * the routes do not exist (`404`), as for the broadcast API without its key.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly token: Buffer;

  constructor(config: AppConfig) {
    this.token = Buffer.from(config.adminToken ?? '');
  }

  canActivate(context: ExecutionContext): boolean {
    const { headers, url } = context
      .switchToHttp()
      .getRequest<{ headers: IncomingHttpHeaders; url?: string }>();
    if (this.token.length === 0) {
      throw new NotFoundException(`Cannot GET ${(url ?? '').split('?')[0]}`);
    }
    if (!bearerMatches(headers.authorization, this.token)) {
      throw new BearerChallengeException('missing or wrong Authorization: Bearer <ADMIN_TOKEN>');
    }
    return true;
  }
}
