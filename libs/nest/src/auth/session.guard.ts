import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerToken } from '../common/bearer';
import { undoOnRefusal } from '../common/request-refusal';
import { AuthService } from './auth.service';
import type { Session } from '../core/session';
import { TokenError } from './token.errors';

/** A request under either HTTP adapter (both have `headers`), with the session the guard found. */
type AuthedRequest = { headers: IncomingHttpHeaders; session?: Session };

/** Requires `Authorization: Bearer <access token>` of a live session; 401 otherwise. */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(private readonly auth: AuthService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthedRequest>();
    const token = bearerToken(request.headers.authorization);
    if (token === null) {
      throw new UnauthorizedException('missing Authorization: Bearer <access token>');
    }
    try {
      request.session = await this.auth.authenticate(token);
      // Refused later (over TICKETS_PER_MINUTE), the token is not kept among the verified ones.
      undoOnRefusal(request, () => this.auth.forget(token));
    } catch (error) {
      if (error instanceof TokenError) {
        throw new UnauthorizedException(error.message);
      }
      throw error;
    }
    return true;
  }
}

/** The session that `JwtAuthGuard` attached to the request. */
export const CurrentSession = createParamDecorator((_: unknown, context: ExecutionContext) => {
  const session = context.switchToHttp().getRequest<AuthedRequest>().session;
  if (session === undefined) {
    throw new Error('CurrentSession used on a route without JwtAuthGuard');
  }
  return session;
});
