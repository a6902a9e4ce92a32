import { CloseCode } from '@switchboard/protocol';
import { Nginx } from '../support/nginx';
import { BROADCAST_PATH_SPELLINGS, rawHttp } from '../support/raw-http';
import { RedisServer, testPrefix } from '../support/redis';
import { sseConnected } from '../support/sse-client';
import { type ServerProcess, spawnServer } from '../support/server-process';
import { connected, type TestClient, within } from '../support/ws-client';

const API_KEY = 'nginx-test-broadcast-key-0123456789abcdef';

/** deploy/nginx.conf, run by real nginx in front of two real instances and one Redis. */
describe('behind nginx', () => {
  let redis: RedisServer;
  let servers: ServerProcess[];
  let nginx: Nginx;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: testPrefix(),
      JWT_SECRET: 'nginx-test-secret-that-is-long-enough-0123456789',
      BROADCAST_API_KEY: API_KEY,
      TRUST_PROXY: 'true',
      SHUTDOWN_DRAIN_MS: '300',
      SHUTDOWN_TIMEOUT_MS: '3000',
    };
    servers = await Promise.all([spawnServer(env), spawnServer(env)]);
    nginx = await Nginx.start([servers[0].port, servers[1].port]);
  });
  afterAll(async () => {
    clients.forEach((client) => client.close());
    await nginx?.stop();
    await Promise.all((servers ?? []).map((server) => server.stop('SIGKILL')));
    await redis?.stop();
  });

  /**
   * A POST through nginx as the SDK makes it: a request that meets a replica in the instant it
   * exits gets nginx's 502 (a POST is not retried on the other replica, and must not be:
   * /api/broadcast is not safe to repeat), so a 502 or 503 is tried again after a pause. nginx
   * marks the exited replica down at the first failure, so the retry reaches the other one.
   */
  async function post(path: string, init: RequestInit, expected: number): Promise<Response> {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      const response = await fetch(`${nginx.http}${path}`, { method: 'POST', ...init });
      if (response.status === expected) {
        return response;
      }
      statuses.push(response.status);
      await response.body?.cancel();
      if (response.status !== 502 && response.status !== 503) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`POST ${path} answered ${statuses.join(', ')}, never ${expected}`);
  }

  async function viaNginx(userId: string): Promise<TestClient> {
    const token = await post(
      '/auth/dev-token',
      { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) },
      200,
    );
    const { accessToken } = (await token.json()) as { accessToken: string };
    const ticket = await post(
      '/auth/ws-ticket',
      { headers: { authorization: `Bearer ${accessToken}` } },
      201,
    );
    const { url } = (await ticket.json()) as { url: string };
    // The ticket URL names the host the client used: nginx.
    expect(url.startsWith(`${nginx.ws}?ticket=`)).toBe(true);
    const client = await connected(url);
    clients.push(client);
    return client;
  }
  const publishOn = (server: ServerProcess, userId: string, event: string) =>
    fetch(`${server.http}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: { userId }, event, data: { from: server.port } }),
    });
  async function holder(): Promise<number> {
    const counts = await Promise.all(
      servers.map(async (server) => {
        const body = (await (await fetch(`${server.http}/health/ready`)).json()) as {
          details: { ws: { connections: number } };
        };
        return body.details.ws.connections;
      }),
    );
    return counts.findIndex((count) => count > 0);
  }

  it('delivers a broadcast published on either instance to a client connected through nginx', async () => {
    const client = await viaNginx('through-nginx');
    expect((await publishOn(servers[0], 'through-nginx', 'from.a')).status).toBe(202);
    expect((await publishOn(servers[1], 'through-nginx', 'from.b')).status).toBe(202);
    await client.nextOfType('from.a');
    await client.nextOfType('from.b');
  });

  it('carries a Server-Sent Events stream unbuffered, and its POSTs from either replica', async () => {
    const token = await post(
      '/auth/dev-token',
      {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'sse-nginx' }),
      },
      200,
    );
    const { accessToken } = (await token.json()) as { accessToken: string };
    const ticket = await post(
      '/auth/ws-ticket',
      { headers: { authorization: `Bearer ${accessToken}` } },
      201,
    );
    const { ticket: value } = (await ticket.json()) as { ticket: string };
    const stream = await sseConnected(nginx.http, `/sse?ticket=${value}`);
    try {
      // nginx spreads the POSTs over both replicas (least_conn): each reaches the stream's.
      for (let i = 0; i < 6; i++) {
        stream.send({ type: 'ping', id: `p${i}` });
      }
      await stream.flushed();
      expect(stream.posts.map((answer) => answer.status)).toEqual(Array(6).fill(202));
      for (let i = 0; i < 6; i++) {
        await stream.next((message) => message.id === `p${i}`);
      }
      // Unbuffered: a broadcast on either replica comes through at once.
      expect((await publishOn(servers[1], 'sse-nginx', 'from.b')).status).toBe(202);
      await stream.nextOfType('from.b', 2000);
    } finally {
      stream.close();
    }
  });

  it('lets no spelling of the broadcast path through nginx without the key', async () => {
    const client = await viaNginx('spelling-watcher');
    for (const target of BROADCAST_PATH_SPELLINGS) {
      const answer = await rawHttp(nginx.port, {
        method: 'POST',
        target: target.replace('PORT', String(nginx.port)),
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: { userId: 'spelling-watcher' }, event: 'leak', data: target }),
      });
      // A 4xx from nginx or from the instance; a 2xx or a 5xx names the spelling.
      expect(
        `${target}: ${answer.status >= 400 && answer.status < 500 ? '4xx' : answer.status}`,
      ).toBe(`${target}: 4xx`);
    }
    expect((await publishOn(servers[0], 'spelling-watcher', 'control')).status).toBe(202);
    await client.nextOfType('control');
    expect(client.messages.filter((message) => message.type === 'leak')).toEqual([]);
  });

  it('moves the clients of a SIGTERMed instance to the other one after 1001', async () => {
    const client = await viaNginx('mover');
    const index = await holder();
    expect(index).toBeGreaterThanOrEqual(0);
    const [leaving, staying] = index === 0 ? servers : [servers[1], servers[0]];
    leaving.child.kill('SIGTERM');
    expect((await within(client.closed, '1001')).code).toBe(CloseCode.GoingAway);

    // What the client SDK does on 1001: a new ticket and a reconnect, through the same nginx.
    const moved = await viaNginx('mover');
    expect((await within(leaving.exited, 'exit', 5000)).code).toBe(0);
    expect((await publishOn(staying, 'mover', 'after.move')).status).toBe(202);
    await moved.nextOfType('after.move');
    expect(nginx.accessLog()).toContain('GET /ws');
    expect(nginx.accessLog()).not.toContain('ticket=');
  });
});
