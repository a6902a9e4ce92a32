import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type INestApplication, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { register, Registry } from 'prom-client';
import type { ErrorData } from '@switchboard/protocol';
import { ConfigError, SwitchboardModule, type SwitchboardModuleOptions } from '@switchboard/nest';
import { InvoicesModule } from '../../examples/express-host/src/invoices/invoices.module';
import { AppModule as FastifyHostModule } from '../../examples/fastify-host/src/app.module';
import { TEST_ORIGIN, TEST_SECRET } from '../support/app';
import { sseConnected } from '../support/sse-client';
import { connected, type TestClient } from '../support/ws-client';

const KEY = 'broadcast-key-that-is-at-least-32-characters';

/** A host application: its own module (the Express example's invoices) beside Switchboard's. */
function hostModule(options: SwitchboardModuleOptions): Type {
  @Module({
    imports: [
      SwitchboardModule.forRoot({
        nodeEnv: 'test',
        jwtSecret: TEST_SECRET,
        allowedOrigins: [TEST_ORIGIN],
        devAuth: true,
        logLevel: 'silent',
        ...options,
      }),
      InvoicesModule,
    ],
  })
  class HostModule {}
  return HostModule;
}

interface Host {
  app: INestApplication;
  http: string;
  ws: string;
}

const adapters = {
  express: () => new ExpressAdapter(),
  fastify: () => new FastifyAdapter(),
};

async function boot(module: Type, adapter: keyof typeof adapters): Promise<Host> {
  const app = await NestFactory.create(module, adapters[adapter](), {
    logger: false,
    abortOnError: false,
  });
  await app.listen(0, '127.0.0.1');
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  return { app, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
}

async function token(host: Host, userId: string): Promise<string> {
  const response = await fetch(`${host.http}/auth/dev-token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { accessToken: string }).accessToken;
}

async function socket(host: Host, userId: string, clients: TestClient[]): Promise<TestClient> {
  const response = await fetch(`${host.http}/auth/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await token(host, userId)}` },
  });
  expect(response.status).toBe(201);
  const { url } = (await response.json()) as { url: string };
  const client = await connected(url);
  clients.push(client);
  return client;
}

/** The reply to a request sent with `id`, whatever its type. */
async function ask(client: TestClient, type: string, data: unknown, id: string) {
  client.send({ type, id, data });
  return client.next((message) => message.id === id);
}

describe.each(['express', 'fastify'] as const)(
  'Switchboard inside a Nest application on %s',
  (adapter) => {
    let host: Host;
    const clients: TestClient[] = [];

    beforeAll(async () => {
      host = await boot(
        hostModule({ broadcastApiKey: KEY, metricsRegistry: new Registry() }),
        adapter,
      );
    });
    afterEach(() => clients.splice(0).forEach((client) => client.close()));
    afterAll(() => host.app.close());

    it('issues tokens and tickets, and welcomes the socket on the host’s own HTTP server', async () => {
      const alice = await socket(host, 'alice', clients);
      expect(alice.welcome.user).toEqual({ id: 'alice', name: 'alice' });
    });

    it('serves Server-Sent Events on the host’s HTTP server, host message types included', async () => {
      const response = await fetch(`${host.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await token(host, 'bob')}` },
      });
      const { ticket } = (await response.json()) as { ticket: string };
      const stream = await sseConnected(host.http, `/sse?ticket=${ticket}`);
      try {
        expect(stream.welcome.user).toEqual({ id: 'bob', name: 'bob' });
        stream.send({ type: 'invoice.watch', id: 'w', data: { invoiceId: 'inv-2' } });
        expect(await stream.next((message) => message.id === 'w')).toMatchObject({
          type: 'invoice.watch',
          data: { watcher: 'bob' },
        });
        // The host's own routes still answer: only the two SSE paths are taken.
        expect((await fetch(`${host.http}/sse-not-ours`)).status).toBe(404);
      } finally {
        stream.close();
      }
    });

    it('routes a host message type to the host’s gateway: guard, pipe, reply with the id', async () => {
      const alice = await socket(host, 'alice', clients);
      const reply = await ask(alice, 'invoice.watch', { invoiceId: 'inv-1' }, 'w1');
      expect(reply).toMatchObject({
        type: 'invoice.watch',
        id: 'w1',
        data: { invoiceId: 'inv-1', paid: false, watcher: 'alice' },
      });
      // The handler joined the socket to the invoice's room, and the client was told.
      expect((await alice.nextOfType('room.joined')).data).toMatchObject({ room: 'invoice.inv-1' });

      const bob = await socket(host, 'bob', clients);
      const refused = await ask(bob, 'invoice.watch', { invoiceId: 'inv-1' }, 'w2');
      expect(refused).toMatchObject({ type: 'error', id: 'w2', data: { code: 'forbidden' } });
    });

    it('answers validation errors with validation_failed and keeps the socket open', async () => {
      const alice = await socket(host, 'alice', clients);
      const bad = await ask(alice, 'invoice.watch', { invoiceId: 42 }, 'v1');
      expect(bad).toMatchObject({ type: 'error', id: 'v1', data: { code: 'validation_failed' } });
      expect((bad.data as ErrorData).details?.messages).toContain('invoiceId must be a string');
      const extra = await ask(alice, 'invoice.watch', { invoiceId: 'inv-1', admin: true }, 'v2');
      expect(extra.data).toMatchObject({ code: 'validation_failed' });
      alice.send('{"type":"invoice.watch","id":"v3","data":{"__proto__":{"x":1}}}');
      const poisoned = await alice.next((message) => message.id === 'v3');
      expect(poisoned.data).toMatchObject({ code: 'validation_failed' });
      const unknown = await ask(alice, 'invoice.nope', {}, 'u1');
      expect(unknown.data).toMatchObject({ code: 'unknown_type' });
      expect((await ask(alice, 'ping', undefined, 'p1')).type).toBe('pong');
    });

    it('lets the host’s own services publish through BroadcastService', async () => {
      const alice = await socket(host, 'alice', clients);
      await ask(alice, 'invoice.watch', { invoiceId: 'inv-1' }, 'w');
      const paid = await fetch(`${host.http}/invoices/inv-1/pay`, { method: 'POST' });
      expect(paid.status).toBe(200);
      expect((await alice.nextOfType('invoice.paid')).data).toEqual({
        id: 'inv-1',
        amountCents: 12_500,
      });
      expect((await alice.nextOfType('invoice.updated')).data).toEqual({
        id: 'inv-1',
        paid: true,
      });
    });

    it('guards the broadcast API on its controller, however the path is spelled', async () => {
      const alice = await socket(host, 'alice', clients);
      const body = JSON.stringify({ to: { userId: 'alice' }, event: 'note', data: { n: 1 } });
      const headers = { 'content-type': 'application/json' };
      for (const path of ['/api/broadcast', '/api/%62roadcast', '/%61pi/broadcast']) {
        const response = await fetch(`${host.http}${path}`, { method: 'POST', headers, body });
        expect([401, 404]).toContain(response.status);
      }
      const sent = await fetch(`${host.http}/api/broadcast`, {
        method: 'POST',
        headers: { ...headers, authorization: `Bearer ${KEY}` },
        body,
      });
      expect(sent.status).toBe(202);
      expect((await alice.nextOfType('note')).data).toEqual({ n: 1 });
    });

    it('applies its JSON limits and its CORS to its own routes', async () => {
      let deep: unknown = 'x';
      for (let level = 0; level < 40; level++) {
        deep = { deep };
      }
      const tooDeep = await fetch(`${host.http}/auth/dev-token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'alice', deep }),
      });
      expect(tooDeep.status).toBe(400);
      const preflight = (origin: string) =>
        fetch(`${host.http}/auth/ws-ticket`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST' },
        });
      const allowed = await preflight(TEST_ORIGIN);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(TEST_ORIGIN);
      const foreign = await preflight('https://evil.example');
      expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('serves its metrics and its probes', async () => {
      const metrics = await fetch(`${host.http}/metrics`);
      expect(await metrics.text()).toContain('ws_connections_active');
      expect((await fetch(`${host.http}/health/ready`)).status).toBe(200);
    });
  },
);

describe('SwitchboardModule at boot', () => {
  it('names a wrong or unknown option', () => {
    expect(() => SwitchboardModule.forRoot({ maxConnections: -1 })).toThrow(
      new ConfigError('maxConnections', 'must be between 1 and 10000000, got -1'),
    );
    expect(() =>
      SwitchboardModule.forRoot({ jwtSecert: 'x' } as unknown as SwitchboardModuleOptions),
    ).toThrow('jwtSecert is not a Switchboard option');
    expect(() =>
      SwitchboardModule.forRoot({ shutdownDrainMs: 10_000, shutdownTimeoutMs: 1_000 }),
    ).toThrow('shutdownDrainMs (10000) must not exceed shutdownTimeoutMs (1000)');
  });

  it('refuses a host gateway that takes over a built-in type', async () => {
    @WebSocketGateway()
    class Hijack {
      @SubscribeMessage('room.join')
      join(@ConnectedSocket() _socket: unknown, @MessageBody() body: unknown) {
        return body;
      }
    }
    @Module({
      imports: [SwitchboardModule.forRoot({ nodeEnv: 'test', jwtSecret: TEST_SECRET })],
      providers: [Hijack],
    })
    class HijackModule {}
    await expect(boot(HijackModule, 'express')).rejects.toThrow(
      "Hijack.join: @SubscribeMessage('room.join') takes over a built-in Switchboard message type",
    );
  });

  it('puts its metrics on the host’s registry, and takes them off when the application closes', async () => {
    const host = await boot(hostModule({}), 'express');
    try {
      expect(register.getSingleMetric('ws_connections_active')).toBeDefined();
    } finally {
      await host.app.close();
    }
    expect(register.getSingleMetric('ws_connections_active')).toBeUndefined();
  });

  it('takes its settings from the host’s own provider (forRootAsync), on Fastify', async () => {
    Object.assign(process.env, {
      APP_JWT_SECRET: TEST_SECRET,
      APP_ORIGINS: TEST_ORIGIN,
      APP_DEV_AUTH: 'true',
    });
    const host = await boot(FastifyHostModule, 'fastify');
    const clients: TestClient[] = [];
    try {
      expect((await fetch(`${host.http}/healthz`)).status).toBe(200);
      // routes: { health: false }: the host serves its own probe instead.
      expect((await fetch(`${host.http}/health/ready`)).status).toBe(404);
      // No key in the settings: the broadcast API does not exist.
      expect((await fetch(`${host.http}/api/broadcast`, { method: 'POST' })).status).toBe(404);
      const carol = await socket(host, 'carol', clients);
      const staff = await socket(host, 'staff-dan', clients);
      const reminded = await ask(
        staff,
        'invoice.remind',
        { invoiceId: 'inv-7', message: 'due soon' },
        'r1',
      );
      expect(reminded.data).toEqual({ sent: true, invoiceId: 'inv-7' });
      expect((await carol.nextOfType('invoice.reminder')).data).toMatchObject({
        id: 'inv-7',
        from: 'staff-dan',
      });
      const refused = await ask(
        carol,
        'invoice.remind',
        { invoiceId: 'inv-7', message: 'x' },
        'r2',
      );
      expect(refused.data).toMatchObject({ code: 'forbidden' });
    } finally {
      clients.forEach((client) => client.close());
      await host.app.close();
    }
  });
});
