import type { INestApplication } from '@nestjs/common';
import type { Logger } from 'pino';
import { createApp } from './app.factory';
import {
  type AppConfig,
  ConfigError,
  createLogger,
  DrainService,
  loadConfig,
} from '@switchboard/nest';

/** The accept queue asked of the kernel (see `listen` below). */
const LISTEN_BACKLOG = 4096;

/** Extra time past SHUTDOWN_TIMEOUT_MS for closing Redis and the HTTP server before giving up. */
const EXIT_GRACE_MS = 5_000;

function configOrExit(): AppConfig {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Invalid configuration: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/**
 * SIGTERM / SIGINT (docs/operations.md, Graceful shutdown): readiness 503 and new upgrades refused at once, sockets closed with
 * 1001 spread over SHUTDOWN_DRAIN_MS, stragglers terminated at SHUTDOWN_TIMEOUT_MS, presence and
 * the instance lease removed, Redis quit, exit 0. A second signal exits at once.
 */
function handleSignals(app: INestApplication, config: AppConfig, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without finishing the drain');
      logger.flush();
      process.exit(1);
    }
    stopping = true;
    const deadline = Date.now() + config.shutdown.timeoutMs;
    logger.info({ signal, timeoutMs: config.shutdown.timeoutMs }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting');
      logger.flush();
      process.exit(1);
    }, config.shutdown.timeoutMs + EXIT_GRACE_MS).unref();
    void app
      .get(DrainService)
      .drain(deadline)
      .then(() => app.close())
      .then(() => {
        logger.info('shut down');
        logger.flush(() => process.exit(0));
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        logger.flush(() => process.exit(1));
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function bootstrap(): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config.logLevel);
  if (config.jwt.key.kind === 'secret' && config.jwt.key.generated) {
    logger.warn('JWT_SECRET is not set: using a random secret for this boot (development only)');
  }
  const app = await createApp(config, logger);
  handleSignals(app, config, logger);
  // Node's default accept queue (511) overflows when a drained instance's clients all come back
  // at once: the kernel drops their SYNs and they retry after 1, 3, 7 s. The kernel caps this at
  // net.core.somaxconn.
  await app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG });
  logger.info(
    {
      url: await app.getUrl(),
      wsPath: config.ws.path,
      mode: config.redisUrl ? 'cluster' : 'embedded',
      redisMode: config.redisUrl ? config.redisMode : undefined,
      devAuth: config.devAuth,
      tls: config.tls !== undefined,
    },
    'Switchboard listening',
  );
  logger.flush(); // the buffered destination would otherwise hold this line for up to a second
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(
    `Switchboard failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
