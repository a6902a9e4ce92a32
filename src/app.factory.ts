import { readFileSync } from 'node:fs';
import { BadRequestException, type INestApplication, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Logger } from 'pino';
import { AppModule, type AppOptions } from './app.module';
import { broadcastApiGate } from './broadcast/broadcast-api.gate';
import { jsonTooDeep } from './common/json-depth';
import { serveDemo } from './demo/demo';
import type { AppConfig } from './config/app-config';
import { PinoLoggerService } from './logging/logger';
import { SwitchboardWsAdapter } from './realtime/handshake/ws.adapter';

const JSON_BODY_LIMIT = '16kb';
/** JSON bodies nested deeper than this are refused with 400 before anything walks them. */
export const MAX_JSON_DEPTH = 32;

/** Builds the application (not yet listening) from a validated configuration. */
export async function createApp(
  config: AppConfig,
  logger: Logger,
  options: AppOptions = {},
): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, options), {
    logger: new PinoLoggerService(logger),
    bodyParser: false,
    httpsOptions: config.tls && {
      cert: readFileSync(config.tls.certFile),
      key: readFileSync(config.tls.keyFile),
    },
  });
  app.disable('x-powered-by');
  // ETags hash every response body; API answers are never cached (tickets say no-store).
  app.set('etag', false);
  // Before the body parser: an unauthorized broadcast call is refused without reading its body.
  app.use('/api/broadcast', broadcastApiGate(config.broadcastApiKey));
  app.useBodyParser('json', {
    limit: JSON_BODY_LIMIT,
    verify: (_req: unknown, _res: unknown, body: Buffer) => {
      if (jsonTooDeep(body, MAX_JSON_DEPTH)) {
        throw new BadRequestException(`JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`);
      }
    },
  });
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
  return app;
}
