import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppConfig } from '@switchboard/nest';
import type { FastifyReply } from 'fastify';

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

/** The demo's files by extension; anything else in dist/public is not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

/** Every servable file under `dir`, as URL path (`/sdk/switchboard-client.js`) and file path. */
function files(dir: string, prefix = ''): Array<{ url: string; path: string }> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      return files(path, `${prefix}/${entry.name}`);
    }
    return entry.isFile() && CONTENT_TYPES[extname(entry.name)] !== undefined
      ? [{ url: `${prefix}/${entry.name}`, path }]
      : [];
  });
}

/** How the page may sign a visitor in on this server: it reads them from `<body data-…>`. */
export interface DemoSignIn {
  /** `DEV_AUTH`: sign in by name with `POST /auth/dev-token`. */
  devSignIn: boolean;
  /** `ANONYMOUS`: "Continue as guest" with `POST /auth/anonymous`. */
  guests: boolean;
  /** `AUTH_COOKIE` or `ANONYMOUS`: a session cookie may sign the page in, so it tries one first. */
  cookieSessions: boolean;
}

export function demoSignIn(config: AppConfig): DemoSignIn {
  return {
    devSignIn: config.devAuth,
    guests: config.anonymous.enabled,
    cookieSessions: config.authCookie !== undefined || config.anonymous.enabled,
  };
}

/** The page with the server's sign-in options on its `<body>` (no inline script under the CSP). */
export function demoPage(html: string, signIn: DemoSignIn): string {
  const attributes = [
    `data-dev-sign-in="${signIn.devSignIn}"`,
    `data-guests="${signIn.guests}"`,
    `data-cookie-sessions="${signIn.cookieSessions}"`,
  ].join(' ');
  if (!html.includes('<body>')) {
    throw new Error('the demo page has no <body> tag for its sign-in options');
  }
  return html.replace('<body>', `<body ${attributes}>`);
}

/**
 * Serves the demo page at `/` and the client SDK at `/sdk/switchboard-client.js`: the few files
 * `npm run build` put in dist/public, read once at boot, each on its own GET (and HEAD) route. No
 * path from a request reaches the file system.
 */
export function serveDemo(app: NestFastifyApplication): void {
  const dir = publicDir();
  if (dir === undefined) {
    new Logger('Demo').warn('demo page not built (dist/public is missing): run npm run build');
    return;
  }
  const signIn = demoSignIn(app.get(AppConfig));
  const fastify = app.getHttpAdapter().getInstance();
  for (const file of files(dir)) {
    const body =
      file.url === '/index.html'
        ? demoPage(readFileSync(file.path, 'utf8'), signIn)
        : readFileSync(file.path);
    const headers = {
      'Content-Type': CONTENT_TYPES[extname(file.path)],
      'Content-Security-Policy': DEMO_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      // A rebuilt demo shows at the next load.
      'Cache-Control': 'no-cache',
    };
    const send = (_request: unknown, reply: FastifyReply): FastifyReply =>
      reply.headers(headers).send(body);
    fastify.get(file.url, send);
    if (file.url === '/index.html') {
      fastify.get('/', send);
    }
  }
}
