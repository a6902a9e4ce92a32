import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { Controller, Get, type INestApplication, Module, Req, type Type } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import {
  ErrorTracker,
  HttpExceptionFilter,
  SwitchboardModule,
  type SwitchboardModuleOptions,
} from '@switchboard/nest';
import { Registry } from 'prom-client';
import { InstanceLease } from '../../libs/nest/src/redis/instance-lease';
import { RedisConnections } from '../../libs/nest/src/redis/redis.connections';
import { TEST_ORIGIN, TEST_SECRET, waitUntil } from '../support/app';
import { RedisServer, testPrefix } from '../support/redis';
import { connected, type TestClient } from '../support/ws-client';

/**
 * One event as the fake ingest received it, and the envelope it came in, as sent. Its exception
 * comes last in `exception.values`, after its causes.
 */
interface Received {
  raw: string;
  event: {
    release?: string;
    environment?: string;
    tags?: Record<string, string>;
    exception?: { values?: Array<{ type?: string; value?: string }> };
  };
}

/**
 * A Sentry ingest on 127.0.0.1: `POST /api/<project>/envelope/`, newline-delimited JSON (a header,
 * then an item header and its payload per item), gzipped by the SDK above 32 KiB.
 */
class FakeIngest {
  readonly envelopes: string[] = [];
  readonly events: Received[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeIngest> {
    const ingest: FakeIngest = new FakeIngest(createServer((req, res) => ingest.take(req, res)));
    await new Promise<void>((resolve) => ingest.server.listen(0, '127.0.0.1', resolve));
    return ingest;
  }

  get dsn(): string {
    return `http://publickey@127.0.0.1:${(this.server.address() as AddressInfo).port}/1`;
  }

  tagged(component: string): Received[] {
    return this.events.filter(({ event }) => event.tags?.component === component);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private take(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const raw = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString(
        'utf8',
      );
      this.envelopes.push(raw);
      if (req.method === 'POST' && /^\/api\/1\/envelope\/(\?|$)/.test(req.url ?? '')) {
        const [, ...items] = raw.split('\n').filter((line) => line !== '');
        for (let i = 0; i + 1 < items.length; i += 2) {
          if ((JSON.parse(items[i]) as { type?: string }).type === 'event') {
            this.events.push({ raw, event: JSON.parse(items[i + 1]) as Received['event'] });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  }
}

/** A host message type whose handler fails, with what the client sent in its message. */
@WebSocketGateway()
class FailingGateway {
  @SubscribeMessage('report.build')
  build(@MessageBody() data: unknown): never {
    throw new Error(`report.build failed on ${JSON.stringify(data)}`);
  }
}

/** A host route that fails, naming the request it failed on (its URL, credentials and cookies). */
@Controller('reports')
class FailingController {
  @Get('export')
  export(@Req() req: IncomingMessage): never {
    const { authorization, cookie } = req.headers;
    throw new Error(`export failed for ${req.url} with ${authorization}; cookie ${cookie}`);
  }
}

function hostModule(options: SwitchboardModuleOptions): Type {
  @Module({
    imports: [
      SwitchboardModule.forRoot({
        nodeEnv: 'test',
        jwtSecret: TEST_SECRET,
        allowedOrigins: [TEST_ORIGIN],
        devAuth: true,
        logLevel: 'silent',
        metricsRegistry: new Registry(),
        ...options,
      }),
    ],
    controllers: [FailingController],
    providers: [FailingGateway],
  })
  class HostModule {}
  return HostModule;
}

interface Host {
  app: INestApplication;
  http: string;
}

/** A host application on Fastify, with Switchboard's filter global as the standalone server has it. */
async function boot(options: SwitchboardModuleOptions): Promise<Host> {
  const app = await NestFactory.create(hostModule(options), new FastifyAdapter(), {
    logger: false,
    abortOnError: false,
  });
  app.useGlobalFilters(
    new HttpExceptionFilter(app.get(HttpAdapterHost).httpAdapter, app.get(ErrorTracker)),
  );
  await app.listen(0, '127.0.0.1');
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  return { app, http: `http://127.0.0.1:${port}` };
}

const COOKIE_VALUE = 'c00kie-value-4d2f';
const QUERY_SECRET = 'query-secret-9b1e';

/** The credentials a client sends, deliberately, so that a test can look for them in the ingest. */
async function credentials(host: Host, userId: string) {
  const response = await fetch(`${host.http}/auth/dev-token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  const { accessToken } = (await response.json()) as { accessToken: string };
  const issued = await fetch(`${host.http}/auth/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}` },
  });
  const { ticket, url } = (await issued.json()) as { ticket: string; url: string };
  return { accessToken, ticket, url };
}

/** The three failures of a host: a message handler (over a ticket's upgrade) and a route. */
async function fail(host: Host, clients: TestClient[]) {
  const { accessToken, ticket, url } = await credentials(host, 'alice');
  const client = await connected(url, { headers: { cookie: `sid=${COOKIE_VALUE}` } });
  clients.push(client);
  client.send({ type: 'report.build', id: 'r1', data: { ticket, token: accessToken } });
  const answer = await client.next((message) => message.id === 'r1');
  expect(answer).toMatchObject({ type: 'error', data: { code: 'internal_error' } });

  const response = await fetch(`${host.http}/reports/export?secret=${QUERY_SECRET}`, {
    headers: {
      authorization: `Bearer ${accessToken}`,
      cookie: `sid=${COOKIE_VALUE}; theme=dark`,
    },
  });
  expect(response.status).toBe(500);
  return { accessToken, ticket, connectionId: client.welcome.connectionId };
}

describe('Error tracking', () => {
  let ingest: FakeIngest;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    ingest = await FakeIngest.start();
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => ingest.close());

  // First in this file: nothing before it may have loaded Sentry.
  it('without SENTRY_DSN, loads nothing of Sentry and sends nothing', async () => {
    const host = await boot({});
    try {
      await fail(host, clients);
    } finally {
      await host.app.close();
    }
    expect(Object.keys(require.cache).filter((path) => path.includes('@sentry'))).toEqual([]);
    expect(ingest.envelopes).toEqual([]);
  });

  describe('with SENTRY_DSN', () => {
    let redis: RedisServer;
    let host: Host;
    let closed = false;

    beforeAll(async () => {
      redis = await RedisServer.start();
      host = await boot({ sentryDsn: ingest.dsn, redisUrl: redis.url, redisPrefix: testPrefix() });
      await waitUntil(() => host.app.get(InstanceLease).synced, 'Redis ready and the lease held');
    });
    afterAll(async () => {
      if (!closed) {
        await host.app.close();
      }
      await redis.stop();
    });

    let sent: Awaited<ReturnType<typeof fail>>;

    it('reports a host handler’s error and a route’s 500 once each, with their tags', async () => {
      sent = await fail(host, clients);
      await waitUntil(
        () => ingest.tagged('host-gateway').length + ingest.tagged('http').length >= 2,
        'both events at the ingest',
      );

      const [handler] = ingest.tagged('host-gateway').map(({ event }) => event);
      expect(handler.tags).toEqual({
        component: 'host-gateway',
        message_type: 'report.build',
        connection_id: sent.connectionId,
        user_id: 'alice',
        transport: 'websocket',
      });
      expect(handler.release).toMatch(/^@switchboard\/nest@\d+\.\d+\.\d+/);
      expect(handler.environment).toBe('test');
      expect(handler.exception?.values?.at(-1)?.value).toMatch(/^report\.build failed on /);

      const [route] = ingest.tagged('http').map(({ event }) => event);
      expect(route.tags).toEqual({ component: 'http', route: 'GET /reports/export' });
      expect(route.exception?.values?.at(-1)?.value).toMatch(
        /^export failed for \/reports\/export /,
      );
    });

    it('reports a Redis outage once, however often the connection retries', async () => {
      let reconnects = 0;
      host.app.get(RedisConnections).command.on('reconnecting', () => reconnects++);
      await redis.stop();
      await waitUntil(() => ingest.tagged('redis').length === 1, 'the outage at the ingest');
      await waitUntil(() => reconnects >= 3, 'three reconnect attempts', 10_000);
      await redis.resume();
      await waitUntil(() => host.app.get(InstanceLease).synced, 'Redis back and the lease held');
      // Closing flushes whatever is still queued, and is no outage of its own.
      closed = true;
      await host.app.close();
      const outages = ingest.tagged('redis');
      expect(outages).toHaveLength(1);
      expect(outages[0].event.tags).toEqual({ component: 'redis' });
      expect(outages[0].event.exception?.values?.at(-1)?.type).toBe('RedisOutageError');
      // Each failure reached the ingest once, and nothing else did.
      expect(ingest.events).toHaveLength(3);
    });

    it('sends no ticket, token, cookie, Authorization header or query string', () => {
      const everything = ingest.envelopes.join('\n');
      expect(everything).toContain('report.build failed'); // the events are there
      for (const secret of [
        sent.ticket,
        sent.accessToken,
        COOKIE_VALUE,
        QUERY_SECRET,
        'Bearer ey',
      ]) {
        expect(everything).not.toContain(secret);
      }
      expect(everything).not.toMatch(/\?secret=/);
    });
  });
});
