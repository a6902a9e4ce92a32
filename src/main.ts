import { createApp } from './app.factory';
import { ConfigError } from './config/config.error';
import { loadConfig } from './config/config.schema';
import { createLogger } from './logging/logger';

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Invalid configuration: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  if (config.jwt.key.kind === 'secret' && config.jwt.key.generated) {
    logger.warn('JWT_SECRET is not set: using a random secret for this boot (development only)');
  }
  const app = await createApp(config, logger);
  await app.listen(config.port, config.host);
  logger.info(
    {
      url: await app.getUrl(),
      wsPath: config.ws.path,
      mode: config.redisUrl ? 'cluster' : 'embedded',
      devAuth: config.devAuth,
    },
    'Switchboard listening',
  );
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(
    `Switchboard failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
