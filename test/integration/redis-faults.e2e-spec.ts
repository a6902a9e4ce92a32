import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { BroadcastUnavailableError } from '../../libs/nest/src/core/broker/broker.interface';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { RedisServer, testPrefix } from '../support/redis';
import { TcpProxy } from '../support/tcp-proxy';
import { connected, type TestClient, TestClient as Client, within } from '../support/ws-client';

/**
 * Redis faults with a real redis-server process that the tests stop and start: commands fail
 * fast, tickets fail closed, sockets stay open, and everything recovers by itself.
 */
describe('Redis faults', () => {
  let redis: RedisServer;
  const apps: TestApp[] = [];
  const clients: TestClient[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): number => unhandled.push(reason);

  beforeAll(async () => {
    redis = await RedisServer.start();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await Promise.all(apps.splice(0).map((app) => app.close()));
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await redis.stop();
  });

  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: redis.url,
    REDIS_PREFIX: testPrefix(),
    ...extra,
  });
  async function boot(vars: Record<string, string>, waitForRedis = true): Promise<TestApp> {
    const app = await startApp(vars, { waitForRedis });
    apps.push(app);
    return app;
  }
  async function connect(app: TestApp, userId: string): Promise<TestClient> {
    const client = await connected((await app.ticket(await app.devToken(userId))).url);
    clients.push(client);
    return client;
  }
  const ticketStatus = async (app: TestApp, token: string) => {
    const response = await fetch(`${app.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      body: (await response.json()) as { message: string },
    };
  };

  it('survives a Redis restart mid-traffic: fails fast and closed, keeps sockets, recovers within 5 s', async () => {
    // The polls below each count against the user's tickets a minute.
    const vars = env({ TICKETS_PER_MINUTE: '1000' });
    const [a, b] = await twoInstances(vars);
    apps.push(a, b);
    const onA = await connect(a, 'fa');
    const onB = await connect(b, 'fb');
    const token = await a.devToken('fa');
    const publish = () => a.app.get(BroadcastService).toUser('fb', 'ping.cross', {});

    await publish();
    await onB.nextOfType('ping.cross');

    await redis.stop();
    // Commands fail fast: no offline queue, no hanging request.
    const started = Date.now();
    await waitUntil(
      async () => (await ticketStatus(a, token)).status === 503,
      'tickets to fail closed',
    );
    const refused = await ticketStatus(a, token);
    expect(refused.status).toBe(503);
    expect(refused.body.message).toMatch(
      /^(revocation|ticket|rate-limit) store is unavailable; retry shortly$/,
    );
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(3000);
    await expect(publish()).rejects.toBeInstanceOf(BroadcastUnavailableError);
    // A new handshake cannot redeem its ticket: HTTP 503, no upgrade.
    const refusedUpgrade = new Client(`${a.ws}?ticket=${'x'.repeat(43)}`);
    clients.push(refusedUpgrade);
    expect((await within(refusedUpgrade.refused, 'HTTP refusal')).status).toBe(503);
    // Local sockets stay open and keep working.
    onA.send({ type: 'ping', id: 'still-here' });
    await onA.nextOfType('pong');
    expect(onB.socket.readyState).toBe(onB.socket.OPEN);

    await redis.resume();
    const back = Date.now();
    await waitUntil(
      async () => {
        try {
          await publish();
          return onB.messages.some((m) => m.type === 'ping.cross');
        } catch (error) {
          if (error instanceof BroadcastUnavailableError) {
            return false;
          }
          throw error;
        }
      },
      'cross-instance delivery after the restart',
      5000,
    );
    // Redis came back empty: tickets wait for every instance's write-back (the restore barrier,
    // 503 meanwhile), which the same 5 s bound covers.
    await waitUntil(
      async () => (await ticketStatus(a, token)).status === 201,
      'tickets after the write-back',
      Math.max(5000 - (Date.now() - back), 1),
    );
    expect(Date.now() - back).toBeLessThan(5000);
    expect([onA.socket.readyState, onB.socket.readyState]).toEqual([
      onA.socket.OPEN,
      onB.socket.OPEN,
    ]);
  });

  it('starts while Redis is down, refuses tickets with 503, and comes ready when Redis appears', async () => {
    await redis.stop();
    try {
      // Each refused poll below counts against the user's tickets a minute.
      const app = await boot(env({ TICKETS_PER_MINUTE: '1000' }), false);
      const token = await app.devToken('early');
      expect(await ticketStatus(app, token)).toMatchObject({ status: 503 });
    } finally {
      await redis.resume();
    }
    const app = apps[0];
    const early = await app.devToken('early'); // once: dev tokens are limited per address
    await waitUntil(
      async () => (await ticketStatus(app, early)).status === 201,
      'tickets after Redis appears',
      5000,
    );
    await connect(app, 'early2');
  });

  it('replaces a half-open subscriber link and delivers broadcasts again', async () => {
    const proxy = await TcpProxy.start(redis.port);
    try {
      const prefix = testPrefix();
      const listener = await boot({ REDIS_URL: proxy.url, REDIS_PREFIX: prefix });
      const publisher = await boot({ REDIS_URL: redis.url, REDIS_PREFIX: prefix });
      const client = await connect(listener, 'halfopen');
      await publisher.app.get(BroadcastService).toUser('halfopen', 'before', {});
      await client.nextOfType('before');

      expect(proxy.blackhole()).toBe(2);
      await waitUntil(
        async () => {
          await publisher.app.get(BroadcastService).toUser('halfopen', 'after', {});
          return client.messages.some((m) => m.type === 'after');
        },
        'delivery over a replaced link',
        10_000,
      );
      expect(client.socket.readyState).toBe(client.socket.OPEN);
    } finally {
      await proxy.close();
    }
  }, 20_000);

  it('answers room.leave during an outage with unavailable and leaves nothing done, nor behind', async () => {
    const app = await boot(env());
    const room = 'leave-in-outage';
    const leaver = await connect(app, 'leaver');
    await leaver.join(room);

    await redis.stop();
    try {
      await expect(leaver.request('room.leave', { room })).rejects.toThrow(/unavailable/);
    } finally {
      await redis.resume();
    }
    const leaver2 = await app.devToken('leaver');
    await waitUntil(
      async () => (await ticketStatus(app, leaver2)).status === 201,
      'Redis back',
      5000,
    );
    // Nothing was done: still a member, still listed.
    expect((await leaver.presence(room)).map((member) => member.id)).toEqual(['leaver']);
    // And a socket that closes leaves no entry behind.
    leaver.close();
    const observer = await connect(app, 'observer');
    await observer.join(room);
    await waitUntil(
      async () => (await observer.presence(room)).map((member) => member.id).join() === 'observer',
      'the closed socket gone from presence',
      5000,
    );
  });

  it('closes nothing and crashes nothing while Redis flaps', async () => {
    const app = await boot(env());
    const client = await connect(app, 'flappy');
    for (let i = 0; i < 3; i++) {
      await redis.stop();
      await new Promise((resolve) => setTimeout(resolve, 150));
      await redis.resume();
    }
    const flappy = await app.devToken('flappy2');
    await waitUntil(async () => (await ticketStatus(app, flappy)).status === 201, 'recovery', 5000);
    expect(client.socket.readyState).toBe(client.socket.OPEN);
  });
});
