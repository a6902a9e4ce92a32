// npm run openapi: writes docs/openapi.json from the controllers (the docs test checks it is current).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { OPENAPI_FILE, openApiDocument } from './api-docs';
import { createApp } from './app.factory';
import { loadConfig } from '@switchboard/nest';

async function main(): Promise<void> {
  // Every route that can exist: the broadcast API and the trace are registered only with a key.
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'error',
    BROADCAST_API_KEY: 'x'.repeat(32),
    ADMIN_TOKEN: 'y'.repeat(32),
  });
  const app = await createApp(config, pino({ level: 'error' }));
  await app.init();
  const document = openApiDocument(app);
  await app.close();
  const path = join(__dirname, '..', OPENAPI_FILE);
  writeFileSync(path, `${JSON.stringify(document, null, 2)}\n`);
  process.stdout.write(`${OPENAPI_FILE} written\n`);
}

void main();
