import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  ForbiddenException,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerToken } from '../common/bearer';
import { nodeRequest } from '../common/client-ip';
import { undoOnRefusal } from '../common/request-refusal';
import { AuthService } from './auth.service';
import type { Session } from '../core/session';
import { CookieSessions } from './cookie-sessions';
import { TokenError } from './token.errors';

/** A request under either HTTP adapter (both have `headers`), with the session the guard found. */
type AuthedRequest = { headers: IncomingHttpHeaders; session?: Session };

/** Why a cookie-authenticated request without an allowed `Origin` is refused. */
export const CROSS_SITE_COOKIE_REFUSAL =
  'a request authenticated by cookie must come from a page of ALLOWED_ORIGINS (its Origin header)';

/**
 * Requires a live session: `Authorization: Bearer <access token>`, else a session the browser's
 * cookies carry (`CookieSessions`: only from an allowed `Origin`, else `403`); `401` otherwise.
 */
@Injectable()
export class SessionGuard implements CanActivate {
  constructor(
    private readonly auth: AuthService,
    private readonly cookies: CookieSessions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthedRequest>();
    const token = bearerToken(request.headers.authorization);
    try {
      if (token !== null) {
        request.session = await this.auth.authenticate(token);
        // Refused later (over TICKETS_PER_MINUTE), the token is not kept among the verified ones.
        undoOnRefusal(request, () => this.auth.forget(token));
        return true;
      }
      const found = await this.cookies.authenticate(nodeRequest(request));
      switch (found.kind) {
        case 'session':
          request.session = found.session;
          return true;
        case 'cross-site':
          throw new ForbiddenException(CROSS_SITE_COOKIE_REFUSAL);
        case 'none':
          throw new UnauthorizedException(
            this.cookies.enabled
              ? 'missing Authorization: Bearer <access token>, or a session cookie'
              : 'missing Authorization: Bearer <access token>',
          );
        default: {
          const unreachable: never = found;
          throw new Error(`unknown cookie authentication ${JSON.stringify(unreachable)}`);
        }
      }
    } catch (error) {
      if (error instanceof TokenError) {
        throw new UnauthorizedException(error.message);
      }
      throw error;
    }
  }
}

/** The session that `SessionGuard` attached to the request. */
export const CurrentSession = createParamDecorator((_: unknown, context: ExecutionContext) => {
  const session = context.switchToHttp().getRequest<AuthedRequest>().session;
  if (session === undefined) {
    throw new Error('CurrentSession used on a route without SessionGuard');
  }
  return session;
});
