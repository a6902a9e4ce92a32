import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { version } from '../package.json';

/** Where the OpenAPI document lives in the repository; a test keeps it equal to what the app builds. */
export const OPENAPI_FILE = 'docs/openapi.json';

/**
 * The OpenAPI document of the HTTP API, from the controllers' decorators. The WebSocket protocol is
 * described by docs/asyncapi.yaml.
 */
export function openApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Switchboard HTTP API')
    .setDescription(
      'Tickets for the WebSocket, sign-out, publishing from other backends, probes and metrics. ' +
        'The WebSocket protocol itself is in docs/asyncapi.yaml and docs/protocol.md.',
    )
    .setVersion(version)
    .setLicense('MIT', '')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'access-token')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'BROADCAST_API_KEY' },
      'broadcast-key',
    )
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' },
      'metrics-token',
    )
    .build();
  return SwaggerModule.createDocument(app, config);
}

/**
 * In development: Swagger UI at `/docs` and the document at `/docs/openapi.json`. Production
 * serves neither; the document ships in the repository.
 */
export function serveApiDocs(app: INestApplication): void {
  SwaggerModule.setup('docs', app, () => openApiDocument(app), {
    jsonDocumentUrl: 'docs/openapi.json',
    raw: ['json'],
  });
}
