import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:http';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  type AppConfig,
  BroadcastApiKeyGuard,
  ErrorTracker,
  HttpExceptionFilter,
  JSON_BODY_LIMIT_BYTES,
  jsonTooDeep,
  MAX_JSON_DEPTH,
  PinoLoggerService,
  type SwitchboardHooks,
  SwitchboardModule,
} from '@switchboard/nest';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { serveApiDocs } from './api-docs';
import { serveDemo } from './demo/demo';
import { broadcastApiGate } from './http/broadcast-api.gate';
import { notFoundBeforeBody } from './http/not-found.hook';

export { MAX_JSON_DEPTH };

/**
 * Builds the standalone server (not yet listening) from a validated configuration: a Nest
 * application that imports `SwitchboardModule` like any host does, plus what only the standalone
 * server has. The HTTP layer is Fastify: on the connect path (a ticket request per connection)
 * Express' router and middleware chain cost about a quarter of the server's CPU
 * (docs/BENCHMARKS.md); the library itself runs on either. The WebSocket upgrade goes through
 * neither: `SwitchboardWsAdapter` takes it from the HTTP server.
 */
export async function createApp(
  config: AppConfig,
  logger: Logger,
  options: Omit<SwitchboardHooks, 'metricsRegistry'> = {},
): Promise<NestFastifyApplication> {
  const slowClients = slowClientLimits(config.handshakeTimeoutMs);
  const adapter = new FastifyAdapter({
    bodyLimit: JSON_BODY_LIMIT_BYTES,
    // Our own access log is the gateway's; Fastify would log every request a second time.
    logger: false,
    // Fastify sets these three on the server it creates, over what createServer was given.
    connectionTimeout: config.handshakeTimeoutMs,
    keepAliveTimeout: config.handshakeTimeoutMs,
    requestTimeout: config.handshakeTimeoutMs,
    http: slowClients,
    https: config.tls && {
      cert: readFileSync(config.tls.certFile),
      key: readFileSync(config.tls.keyFile),
      // A TLS handshake that has not finished in time (Node's default: 120 s).
      handshakeTimeout: config.handshakeTimeoutMs,
      ...slowClients,
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    // Its own registry: every app of a process (the tests boot several) counts for itself.
    SwitchboardModule.forConfig(config, { ...options, metricsRegistry: new Registry() }),
    adapter,
    { logger: new PinoLoggerService(logger), bodyParser: false },
  );
  const fastify = app.getHttpAdapter().getInstance();
  // Before the body is read: no route, or an unauthorized broadcast call, costs no body parsing.
  fastify.addHook('onRequest', notFoundBeforeBody);
  fastify.addHook('onRequest', broadcastApiGate(new BroadcastApiKeyGuard(config)));
  registerJsonParser(fastify);
  // Fastify's own refusals (a body too large or malformed, an unknown route) in the same shape,
  // and a route's 500 reported as on Switchboard's own controllers.
  app.useGlobalFilters(
    new HttpExceptionFilter(app.get(HttpAdapterHost).httpAdapter, app.get(ErrorTracker)),
  );
  if (config.devAuth || config.demo) {
    serveDemo(app);
  }
  if (config.nodeEnv === 'development') {
    serveApiDocs(app);
  }
  return app;
}

/**
 * "Slow clients hold nothing" (docs/operations.md, Slow clients), for Node's HTTP server. With
 * Fastify's options beside it, HANDSHAKE_TIMEOUT_MS bounds:
 * - a request's headers (`headersTimeout`), from its first byte, or from the connection's start
 *   when nothing came at all; an upgrade is all headers;
 * - a request's headers and body (Fastify `requestTimeout`, Node's default 300 s, Fastify's none);
 * - an idle keep-alive connection (Fastify `keepAliveTimeout`, Fastify's default 72 s; Node
 *   keeps it 1 s longer, for a request already on its way);
 * - a socket on which nothing moves, e.g. a response its client does not read (Fastify
 *   `connectionTimeout`, the socket's idle timeout; ws turns it off on the sockets it takes).
 * Node checks the first two only every `connectionsCheckingInterval` (30 s by default, which would
 * let a 5 s limit run to 35 s).
 */
function slowClientLimits(timeoutMs: number): ServerOptions {
  return {
    headersTimeout: timeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.ceil(timeoutMs / 4)),
  };
}

/**
 * `application/json` bodies up to 16 KiB, refused with 400 when nested deeper than
 * `MAX_JSON_DEPTH` (before anything recursive walks them) or when they carry `__proto__` or
 * `constructor.prototype` keys.
 */
function registerJsonParser(fastify: FastifyInstance): void {
  const parse = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: JSON_BODY_LIMIT_BYTES },
    (request, body, done) => {
      if (jsonTooDeep(body as Buffer, MAX_JSON_DEPTH)) {
        const error = new Error(`JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`);
        done(Object.assign(error, { statusCode: 400 }), undefined);
        return;
      }
      void parse(request, (body as Buffer).toString('utf8'), done);
    },
  );
}
