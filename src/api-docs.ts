import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
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
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' }, 'admin-token')
    .build();
  return SwaggerModule.createDocument(app, config);
}

/** The Swagger UI page: its own assets only, the document from `/docs/openapi.json`. */
const SWAGGER_UI_PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Switchboard HTTP API</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/swagger-ui-init.js"></script>
  </body>
</html>
`;

const SWAGGER_UI_INIT =
  "window.ui = SwaggerUIBundle({ url: '/docs/openapi.json', dom_id: '#swagger-ui' });\n";

/**
 * In development: Swagger UI at `/docs` and the document at `/docs/openapi.json`. Production
 * serves neither; the document ships in the repository.
 *
 * Swagger UI's two assets are read once from `swagger-ui-dist` and served on their own routes, as
 * the demo's files are, rather than by `SwaggerModule`'s UI, which needs `@fastify/static` (a
 * static file server, and a dependency that does not install cleanly on Node 20) for them.
 */
export function serveApiDocs(app: NestFastifyApplication): void {
  SwaggerModule.setup('docs', app, () => openApiDocument(app), {
    ui: false,
    jsonDocumentUrl: 'docs/openapi.json',
    raw: ['json'],
  });
  // Resolved at run time from node_modules (the bundler would turn a plain require.resolve into a
  // module id).
  const assets = dirname(createRequire(__filename).resolve('swagger-ui-dist/package.json'));
  const routes: Array<[url: string, type: string, body: string | Buffer]> = [
    ['/docs', 'text/html; charset=utf-8', SWAGGER_UI_PAGE],
    ['/docs/swagger-ui-init.js', 'text/javascript; charset=utf-8', SWAGGER_UI_INIT],
    [
      '/docs/swagger-ui-bundle.js',
      'text/javascript; charset=utf-8',
      readFileSync(join(assets, 'swagger-ui-bundle.js')),
    ],
    [
      '/docs/swagger-ui.css',
      'text/css; charset=utf-8',
      readFileSync(join(assets, 'swagger-ui.css')),
    ],
  ];
  const fastify = app.getHttpAdapter().getInstance();
  for (const [url, type, body] of routes) {
    fastify.get(url, (_request, reply) =>
      reply.headers({ 'Content-Type': type, 'X-Content-Type-Options': 'nosniff' }).send(body),
    );
  }
  fastify.get('/docs/', (_request, reply) => reply.redirect('/docs'));
}
