import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { suiteRedis, testPrefix } from '../support/redis';
import { type ServerProcess, spawnServer } from '../support/server-process';
import { connected, type TestClient, within } from '../support/ws-client';

const ROOT = resolve(__dirname, '../..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TSC = require.resolve('typescript/bin/tsc');
const SECRET = 'example-secret-that-is-at-least-32-characters';
const KEY = 'example-broadcast-key-of-at-least-32-characters';
const ORIGIN = 'http://app.example.test';
const EXAMPLES = ['express-host', 'fastify-host'];

/**
 * The examples as a Nest team would run them: the three packages built and packed with `npm pack`,
 * installed from the tarballs beside each example's own dependencies in a folder outside this
 * repository (nothing of it resolves there), compiled with tsc, started as processes, and driven
 * by real clients over HTTP and WebSocket, two Express instances on one Redis.
 */
describe('the example host applications, from the packed packages', () => {
  let scratch: string;
  let redis: { url: string; stop(): Promise<void> };
  const servers: ServerProcess[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-packages.mjs')], {
      cwd: ROOT,
      stdio: 'pipe',
    });
    scratch = mkdtempSync(join(tmpdir(), 'switchboard-hosts-'));
    const tarballs = ['libs/protocol', 'libs/client', 'libs/nest'].map((workspace) => {
      const out = execFileSync(
        NPM,
        ['pack', '--json', '--workspace', workspace, '--pack-destination', scratch],
        { cwd: ROOT, encoding: 'utf8' },
      );
      return `file:${join(scratch, (JSON.parse(out) as Array<{ filename: string }>)[0].filename)}`;
    });
    // One install for both examples (their dependencies together), from the npm cache that
    // `npm ci` filled; the registry only for what the cache lacks.
    const dependencies: Record<string, string> = {};
    for (const example of EXAMPLES) {
      cpSync(join(ROOT, 'examples', example), join(scratch, example), {
        recursive: true,
        filter: (path) => !/\/(node_modules|dist)(\/|$)/.test(path),
      });
      const manifest = JSON.parse(readFileSync(join(scratch, example, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
        devDependencies: Record<string, string>;
      };
      Object.assign(dependencies, manifest.dependencies, manifest.devDependencies);
      delete dependencies.typescript; // compiled with this repository's tsc
    }
    const [protocol, client, nest] = tarballs;
    Object.assign(dependencies, {
      '@switchboard/protocol': protocol,
      '@switchboard/client': client,
      '@switchboard/nest': nest,
    });
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ name: 'hosts', version: '1.0.0', private: true, dependencies }),
    );
    execFileSync(
      NPM,
      ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'],
      { cwd: scratch, stdio: 'pipe', timeout: 240_000 },
    );
    for (const example of EXAMPLES) {
      const compiled = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json'], {
        cwd: join(scratch, example),
        encoding: 'utf8',
      });
      if (compiled.status !== 0) {
        throw new Error(`${example} does not compile:\n${compiled.stdout}${compiled.stderr}`);
      }
    }
    redis = await suiteRedis();
  }, 300_000);
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await Promise.all(servers.splice(0).map((server) => server.stop('SIGKILL')));
  });
  afterAll(async () => {
    await redis?.stop();
    if (scratch) {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  async function start(
    example: string,
    env: Record<string, string>,
    readyPath: string,
  ): Promise<ServerProcess> {
    const server = await spawnServer(env, 20_000, {
      main: join(scratch, example, 'dist', 'main.js'),
      cwd: join(scratch, example),
      listening: new RegExp(`${example} listening on http://[^:]+:(\\d+)`),
      readyPath,
    });
    servers.push(server);
    return server;
  }

  async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
    return fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }

  async function socket(server: ServerProcess, userId: string): Promise<TestClient> {
    const minted = await post(`${server.http}/auth/dev-token`, { userId });
    expect(minted.status).toBe(200);
    const { accessToken } = (await minted.json()) as { accessToken: string };
    const ticket = await fetch(`${server.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, origin: ORIGIN },
    });
    expect(ticket.status).toBe(201);
    const { url } = (await ticket.json()) as { url: string };
    const client = await connected(url, { origin: ORIGIN });
    clients.push(client);
    return client;
  }

  async function ask(client: TestClient, type: string, data: unknown, id: string) {
    client.send({ type, id, data });
    return client.next((message) => message.id === id);
  }

  it('express-host: two instances on one Redis, its own gateway and service, the broadcast API, the SIGTERM drain', async () => {
    const env = {
      NODE_ENV: 'test',
      JWT_SECRET: SECRET,
      ALLOWED_ORIGINS: ORIGIN,
      DEV_AUTH: 'true',
      BROADCAST_API_KEY: KEY,
      REDIS_URL: redis.url,
      REDIS_PREFIX: testPrefix(),
      SHUTDOWN_DRAIN_MS: '300',
    };
    const a = await start('express-host', env, '/health/ready');
    const b = await start('express-host', env, '/health/ready');
    const alice = await socket(b, 'alice');
    const bob = await socket(a, 'bob');

    // Its own message type: guard, pipe, reply with the id, and a room joined by the handler.
    expect(await ask(alice, 'invoice.watch', { invoiceId: 'inv-1' }, 'w1')).toMatchObject({
      type: 'invoice.watch',
      id: 'w1',
      data: { invoiceId: 'inv-1', paid: false, watcher: 'alice' },
    });
    expect(await ask(bob, 'invoice.watch', { invoiceId: 'inv-1' }, 'w2')).toMatchObject({
      type: 'error',
      data: { code: 'forbidden' },
    });
    expect(await ask(bob, 'invoice.watch', { invoiceId: 7 }, 'w3')).toMatchObject({
      type: 'error',
      data: { code: 'validation_failed' },
    });

    // Its own service publishes on instance A; alice is connected to B.
    expect((await post(`${a.http}/invoices/inv-1/pay`, {})).status).toBe(200);
    expect((await alice.nextOfType('invoice.paid')).data).toEqual({
      id: 'inv-1',
      amountCents: 12_500,
    });

    // The broadcast API: only with the key.
    const note = { to: { userId: 'alice' }, event: 'note', data: { n: 1 } };
    expect((await post(`${a.http}/api/broadcast`, note)).status).toBe(401);
    expect((await post(`${a.http}/api%2Fbroadcast`, note)).status).toBe(404);
    expect(
      (await post(`${a.http}/api/broadcast`, note, { authorization: `Bearer ${KEY}` })).status,
    ).toBe(202);
    expect((await alice.nextOfType('note')).data).toEqual({ n: 1 });

    // SIGTERM: the host's enableShutdownHooks drains Switchboard's sockets, then Nest ends the
    // process with the signal it got.
    const closed = within(alice.closed, 'the drain to close the socket', 10_000);
    const exited = b.stop('SIGTERM');
    expect(await closed).toMatchObject({
      code: 1001,
      reason: expect.stringMatching(/^reconnect in \d+ ms$/),
    });
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('fastify-host: settings from its own provider (forRootAsync), its own probe, a staff-only message type', async () => {
    const server = await start(
      'fastify-host',
      { APP_JWT_SECRET: SECRET, APP_ORIGINS: ORIGIN, APP_DEV_AUTH: 'true' },
      '/healthz',
    );
    expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
    expect((await post(`${server.http}/api/broadcast`, {})).status).toBe(404);
    const carol = await socket(server, 'carol');
    const staff = await socket(server, 'staff-dan');
    expect(
      await ask(staff, 'invoice.remind', { invoiceId: 'inv-7', message: 'due soon' }, 'r1'),
    ).toMatchObject({ type: 'invoice.remind', id: 'r1', data: { sent: true } });
    expect((await carol.nextOfType('invoice.reminder')).data).toMatchObject({
      id: 'inv-7',
      from: 'staff-dan',
      message: 'due soon',
    });
    expect(
      await ask(carol, 'invoice.remind', { invoiceId: 'inv-7', message: 'x' }, 'r2'),
    ).toMatchObject({ type: 'error', data: { code: 'forbidden' } });
    const closed = within(carol.closed, 'the drain to close the socket', 10_000);
    const exited = server.stop('SIGTERM');
    expect((await closed).code).toBe(1001);
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
  });
});
