import { readFileSync } from 'node:fs';
import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { serveApiDocs } from './api-docs';
import { AppModule, type AppOptions } from './app.module';
import { broadcastApiGate } from './broadcast/broadcast-api.gate';
import { jsonTooDeep } from './common/json-depth';
import { serveDemo } from './demo/demo';
import type { AppConfig } from './config/app-config';
import { PinoLoggerService } from './logging/logger';
import { SwitchboardWsAdapter } from './realtime/handshake/ws.adapter';

const JSON_BODY_LIMIT_BYTES = 16 * 1024;
/** JSON bodies nested deeper than this are refused with 400 before anything walks them. */
export const MAX_JSON_DEPTH = 32;

/**
 * Builds the application (not yet listening) from a validated configuration. The HTTP layer is
 * Fastify: on the connect path (a ticket request per connection) Express' router and middleware
 * chain cost about a quarter of the server's CPU (docs/BENCHMARKS.md). The WebSocket upgrade does
 * not go through either: `SwitchboardWsAdapter` takes it from the HTTP server.
 */
export async function createApp(
  config: AppConfig,
  logger: Logger,
  options: AppOptions = {},
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: JSON_BODY_LIMIT_BYTES,
    // Nest's own middleware layer (middie) is not used: the one pre-body check is a Fastify hook.
    skipMiddie: true,
    // Our own access log is the gateway's; Fastify would log every request a second time.
    logger: false,
    https: config.tls && {
      cert: readFileSync(config.tls.certFile),
      key: readFileSync(config.tls.keyFile),
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, options),
    adapter,
    { logger: new PinoLoggerService(logger), bodyParser: false },
  );
  const fastify = app.getHttpAdapter().getInstance();
  // Before the body is read: an unauthorized broadcast call is refused without parsing its body.
  fastify.addHook('onRequest', broadcastApiGate(config.broadcastApiKey));
  registerJsonParser(fastify);
  app.enableCors({
    origin: [...config.allowedOrigins],
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    maxAge: 600,
  });
  app.useGlobalPipes(
    new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
  );
  app.useWebSocketAdapter(new SwitchboardWsAdapter(app));
  if (config.devAuth || config.demo) {
    serveDemo(app);
  }
  if (config.nodeEnv === 'development') {
    serveApiDocs(app);
  }
  return app;
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
