import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Response } from 'express';

/**
 * No inline script or style, nothing from elsewhere; sockets and fetches to this origin only
 * (CSP 3 lets 'self' cover ws: and wss: to the same host).
 */
export const DEMO_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

/** Where `npm run build` puts the demo and the SDK module: dist/public, next to dist/main.js. */
function publicDir(): string | undefined {
  return [join(__dirname, 'public'), join(process.cwd(), 'dist', 'public')].find((dir) =>
    existsSync(join(dir, 'index.html')),
  );
}

/** Serves the demo page at `/` and the client SDK at `/sdk/switchboard-client.js`. */
export function serveDemo(app: NestExpressApplication): void {
  const dir = publicDir();
  if (dir === undefined) {
    new Logger('Demo').warn('demo page not built (dist/public is missing): run npm run build');
    return;
  }
  app.useStaticAssets(dir, {
    index: 'index.html',
    setHeaders: (res: Response) => {
      res.setHeader('Content-Security-Policy', DEMO_CSP);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Referrer-Policy', 'no-referrer');
    },
  });
}
