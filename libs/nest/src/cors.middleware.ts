import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import { AppConfig } from './config/app-config';
import { CookieSessions } from './auth/cookie-sessions';

/** How long a browser may cache a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS for Switchboard's own routes, from `ALLOWED_ORIGINS`, whatever the host application's own
 * CORS settings are (and on either HTTP adapter: a Nest middleware sees Node's request and
 * response). An allowed `Origin` is echoed with `Vary: Origin`; a preflight from one is answered
 * `204` here; any other origin gets no CORS headers, so its browser refuses the response.
 */
@Injectable()
export class CorsMiddleware implements NestMiddleware {
  private readonly origins: ReadonlySet<string>;
  /** Cookie sessions are on: a page's `credentials: 'include'` requests may read the answers. */
  private readonly credentials: boolean;

  constructor(config: AppConfig, cookies: CookieSessions) {
    this.origins = config.allowedOrigins;
    this.credentials = cookies.enabled;
  }

  use(request: IncomingMessage, response: ServerResponse, next: () => void): void {
    const origin = request.headers.origin;
    response.setHeader('Vary', 'Origin');
    if (origin === undefined || !this.origins.has(origin)) {
      next();
      return;
    }
    response.setHeader('Access-Control-Allow-Origin', origin);
    if (this.credentials) {
      response.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
      response.setHeader('Access-Control-Allow-Methods', 'GET,POST');
      response.setHeader('Access-Control-Allow-Headers', 'Authorization,Content-Type');
      response.setHeader('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_S));
      response.statusCode = 204;
      response.setHeader('Content-Length', '0');
      response.end();
      return;
    }
    next();
  }
}
