import type { PresenceDiffData } from '@switchboard/protocol';
import WebSocket from 'ws';
import { SwitchboardClient } from '@switchboard/client';
import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { ConnectionRegistry } from '../../libs/nest/src/realtime/connections/connection-registry.interface';
import { RevocationStore } from '../../libs/nest/src/auth/revocation-store.interface';
import { InstanceLease } from '../../libs/nest/src/redis/instance-lease';
import { RedisConnections } from '../../libs/nest/src/redis/redis.connections';
import type { RedisMode } from '../../libs/nest/src/config/app-config';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { REDIS_MODES, startBackend } from '../support/backends';
import { RedisServer, testPrefix } from '../support/redis';
import { connected, type TestClient, TestClient as Client, within } from '../support/ws-client';

const SECRET = 'data-loss-test-secret-that-is-long-enough-012';

/**
 * Redis that comes back without its data (a restart without persistence, as the test's
 * redis-server runs): each instance writes back its connections, presence and the revocations it
 * has seen, and no instance (not even one booted meanwhile, which knows no revocation) is ready or
 * issues a ticket until every instance has (docs/operations.md, Cluster mode). Also the other side
 * of the lease: the members of a SIGKILLed instance are announced as gone, once.
 */
describe('Redis data loss', () => {
  let redis: RedisServer;
  let env: Record<string, string>;
  let a: TestApp;
  let b: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: testPrefix(),
      JWT_SECRET: SECRET,
      WS_HEARTBEAT_MS: '500',
      WS_MESSAGES_PER_WINDOW: '1000',
      MAX_CONNECTIONS_PER_USER: '3',
    };
    [a, b] = await twoInstances(env);
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    // A test that failed midway leaves no write-back running into the next one.
    jest.restoreAllMocks();
    await waitUntil(() => synced(a) && synced(b), 'both instances synced', 10_000);
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await redis.stop();
  });

  const synced = (app: TestApp) => app.app.get(InstanceLease).synced;
  async function loseRedisData(): Promise<void> {
    await redis.stop();
    await redis.resume();
    await waitUntil(() => synced(a) && synced(b), 'both instances written back', 10_000);
  }
  async function connect(app: TestApp, userId: string): Promise<TestClient> {
    const client = await connected((await app.ticket(await app.devToken(userId))).url);
    clients.push(client);
    return client;
  }
  const ticketStatus = async (app: TestApp, token: string): Promise<number> =>
    (
      await fetch(`${app.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      })
    ).status;
  async function logout(app: TestApp, token: string): Promise<void> {
    const response = await fetch(`${app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(204);
  }
  const lease = (app: TestApp) => app.app.get(InstanceLease);
  /**
   * Holds the revocations that `apps` write back (as a slow write-back would, with many of them)
   * until `release`.
   */
  function holdRevocationWriteBack(apps: TestApp[]): {
    started: () => boolean;
    release: () => void;
  } {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const writing = new Set<TestApp>();
    const spies = apps.map((app) => {
      const store = app.app.get<RevocationStore>(RevocationStore);
      const revoke = store.revoke.bind(store);
      return jest.spyOn(store, 'revoke').mockImplementation(async (sessionId, ttlMs) => {
        writing.add(app);
        await gate;
        return revoke(sessionId, ttlMs);
      });
    });
    return {
      started: () => writing.size === apps.length,
      release: () => {
        release();
        spies.forEach((spy) => spy.mockRestore());
      },
    };
  }
  const bearerUpgrade = (app: TestApp, token: string): TestClient => {
    const client = new Client(app.ws, { headers: { authorization: `Bearer ${token}` } });
    clients.push(client);
    return client;
  };

  it('keeps a revoked session revoked, on every instance and on one started afterwards', async () => {
    const token = await a.devToken('leaver');
    const logout = await fetch(`${a.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(logout.status).toBe(204);
    expect(await ticketStatus(b, token)).toBe(401);

    await loseRedisData();
    expect(await ticketStatus(a, token)).toBe(401);
    expect(await ticketStatus(b, token)).toBe(401);
    const bearer = new Client(a.ws, { headers: { authorization: `Bearer ${token}` } });
    clients.push(bearer);
    expect((await within(bearer.closed, 'revoked Bearer upgrade')).code).toBe(
      CloseCode.SessionRevoked,
    );
    // An instance that boots now learns the revocation from what the others wrote back.
    const late = await startApp(env);
    try {
      expect(await ticketStatus(late, token)).toBe(401);
    } finally {
      await late.close();
    }
  });

  it('lets no instance, not even one booted during the outage, issue a ticket until every instance has written back', async () => {
    const started = Date.now();
    const token = await a.devToken('gone');
    const other = await a.devToken('stays');
    await logout(a, token);
    const held = holdRevocationWriteBack([a, b]);
    await redis.stop();
    // C boots during the outage: it knows no revocation, and Redis will know none at first either.
    const c = await startApp(env, { waitForRedis: false });
    try {
      try {
        await redis.resume();
        await waitUntil(
          () => held.started() && c.app.get(RedisConnections).up,
          'Redis back, C connected, and A and B writing their revocations back',
          10_000,
        );
        const refused = await fetch(`${c.http}/auth/ws-ticket`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        expect(refused.status).toBe(503);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
        expect((await within(bearerUpgrade(c, token).refused, 'C refusing upgrades')).status).toBe(
          503,
        );
        expect((await fetch(`${c.http}/health/ready`)).status).toBe(503);
        expect(await ticketStatus(c, other)).toBe(503);
        expect(await ticketStatus(a, other)).toBe(503);
      } finally {
        held.release();
      }
      await waitUntil(
        () => [a, b, c].every((app) => lease(app).synced),
        'every instance synced, the barrier down',
        10_000,
      );
      expect(await ticketStatus(c, token)).toBe(401);
      expect((await within(bearerUpgrade(c, token).closed, 'revoked Bearer upgrade')).code).toBe(
        CloseCode.SessionRevoked,
      );
      expect(await ticketStatus(c, other)).toBe(201);
      expect((await fetch(`${c.http}/health/ready`)).status).toBe(200);
      // A and B, which held state, say that Redis lost its data; C, booted meanwhile, does not.
      // (Nest's static logger writes every app's lines to one capture: count them all.)
      const lossLines = [a, b, c]
        .flatMap((app) => app.logs.parsed())
        .filter((line) => Date.parse(String(line.time)) >= started)
        .filter((line) => /^(Redis lost its data|instance lease lost)/.test(String(line.msg)));
      expect(lossLines).toHaveLength(2);
    } finally {
      await c.close();
    }
  }, 30_000);

  it('closes, on every instance, the sockets of a session whose revocation an instance cut off for longer writes back', async () => {
    const token = await a.devToken('late');
    await logout(a, token);
    // A and B do not renew (cut off from Redis, as far as the others can tell), so C, booted
    // during the outage, finds nobody to wait for once instances had time to reconnect: it admits
    // the revoked session. That residual case is what the write-back's closing is for.
    const renewals = [a, b].map((app) => lease(app).renew.bind(lease(app)));
    const paused = [a, b].map((app) =>
      jest.spyOn(lease(app), 'renew').mockImplementation(() => Promise.resolve()),
    );
    try {
      // A renewal already in flight would be resent by ioredis once Redis is back, and write the
      // revocation back before C admits the session: let it finish while Redis is still up.
      await Promise.all(renewals.map((renew) => renew()));
      await redis.stop();
      const c = await startApp(env, { waitForRedis: false });
      try {
        await redis.resume();
        await waitUntil(() => lease(c).synced, 'C synced alone', 10_000);
        const admitted = await connected((await c.ticket(token)).url);
        clients.push(admitted);

        paused.forEach((spy) => spy.mockRestore());
        await Promise.all([a, b].map((app) => lease(app).renew()));
        expect((await within(admitted.closed, 'the socket closed by the write-back')).code).toBe(
          CloseCode.SessionRevoked,
        );
        await waitUntil(
          () => [a, b, c].every((app) => lease(app).synced),
          'every instance synced again',
          10_000,
        );
        expect(await ticketStatus(c, token)).toBe(401);
      } finally {
        await c.close();
      }
    } finally {
      paused.forEach((spy) => spy.mockRestore());
    }
  }, 30_000);

  it('rebuilds presence and the connection registry of the sockets still open', async () => {
    const alice = await connect(a, 'alice');
    const bob = await connect(b, 'bob');
    await alice.join('kept');
    await bob.join('kept');
    const diffs = (client: TestClient) =>
      client.messages
        .filter((m) => m.type === 'presence.diff')
        .map((m) => m.data as PresenceDiffData);
    await waitUntil(
      () => Promise.resolve(diffs(alice).some((diff) => diff.count === 2)),
      'alice told that bob joined',
    );
    const before = { alice: diffs(alice).length, bob: diffs(bob).length };

    await loseRedisData();
    expect((await alice.presence('kept')).map((m) => m.id)).toEqual(['alice', 'bob']);
    expect((await bob.presence('kept')).map((m) => m.id)).toEqual(['alice', 'bob']);
    // The write-back is told in a batch: once it has passed, what every member knows is exact.
    for (const [client, seen] of [
      [alice, before.alice],
      [bob, before.bob],
    ] as const) {
      await waitUntil(
        () => Promise.resolve(diffs(client).slice(seen).at(-1)?.count === 2),
        'a presence.diff with the count written back',
      );
      const known = new Set(['alice', 'bob']);
      for (const diff of diffs(client).slice(seen)) {
        diff.joined.forEach((user) => known.add(user.id));
        diff.left.forEach((id) => known.delete(id));
      }
      expect([...known].sort()).toEqual(['alice', 'bob']);
    }
    const registry = a.app.get<ConnectionRegistry>(ConnectionRegistry);
    expect(await registry.ofUser('alice')).toHaveLength(1);
    expect(await registry.ofUser('bob')).toHaveLength(1);
    // Room traffic flows again across the instances.
    bob.send({ type: 'room.message', data: { room: 'kept', text: 'still here' } });
    expect((await alice.nextOfType<{ text: string }>('room.message')).data?.text).toBe(
      'still here',
    );
  });

  it('starts its streams on a new epoch: a client coming back is told to reload, never given a wrong replay', async () => {
    const userId = 'streamer';
    const watcher = await connect(a, userId);
    const { position } = await watcher.join('streamed');
    const own = watcher.welcome.position!;
    const broadcast = b.app.get(BroadcastService);
    await broadcast.toRoom('streamed', 'tick', { n: 1 });
    await broadcast.toUser(userId, 'ping.me', { n: 1 });
    await watcher.next((m) => m.type === 'ping.me');
    expect(await watcher.nextOfType('tick')).toMatchObject({ offset: 1, data: { n: 1 } });

    await loseRedisData();
    // The open socket goes on receiving: the streams start again at offset 1.
    await broadcast.toRoom('streamed', 'tick', { n: 2 });
    expect(await watcher.next((m) => m.type === 'tick' && m.offset === 1)).toMatchObject({
      data: { n: 2 },
    });

    watcher.close();
    const { url } = await b.ticket(await b.devToken(userId));
    const back = await connected(`${url}&since=${own.epoch}:1`);
    clients.push(back);
    expect(back.welcome).toMatchObject({ recovered: false, missed: 0 });
    expect(back.welcome.position!.epoch).not.toBe(own.epoch);
    const joined = await back.join('streamed', { epoch: position!.epoch, offset: 2 });
    expect(joined).toMatchObject({ recovered: false, missed: 0, position: { offset: 1 } });
    expect(joined.position!.epoch).not.toBe(position!.epoch);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(back.messages.filter((m) => m.offset !== undefined)).toEqual([]); // nothing replayed
  });

  it('SDK: keeps delivering a stream that started again, then reports reset for it after a reconnect', async () => {
    const sdk = new SwitchboardClient({
      url: a.http,
      WebSocket,
      getAccessToken: () => a.devToken('sdk-user'),
      backoff: { initialMs: 50, maxMs: 200 },
    });
    const ticks: number[] = [];
    const resets: Array<{ room?: string }> = [];
    sdk.onEvent<{ n: number }>('tick', ({ n }) => ticks.push(n));
    sdk.on('reset', (reset) => resets.push(reset));
    try {
      sdk.connect();
      await waitUntil(() => sdk.state === 'open', 'open');
      await sdk.join('sdk-room');
      const broadcast = b.app.get(BroadcastService);
      await broadcast.toRoom('sdk-room', 'tick', { n: 1 });
      await broadcast.toRoom('sdk-room', 'tick', { n: 2 });
      await waitUntil(() => ticks.length === 2, 'two ticks');

      await loseRedisData();
      await broadcast.toRoom('sdk-room', 'tick', { n: 3 }); // offset 1 again, on a new epoch
      await waitUntil(() => ticks.length === 3, 'the tick after the loss, not taken for a repeat');
      await broadcast.disconnectUser('sdk-user', CloseCode.GoingAway, 'restart');
      await waitUntil(() => resets.length === 2, 'a reset for the room and for the user stream');
      expect(resets).toEqual(expect.arrayContaining([{ room: 'sdk-room' }, { room: undefined }]));
      expect(ticks).toEqual([1, 2, 3]);
    } finally {
      sdk.close();
    }
  });

  it('is unready, issues no ticket and takes no socket until its write-back is done', async () => {
    const token = await a.devToken('patient');
    let finish: () => void = () => undefined;
    let holding = false;
    // A slow write-back step (as with many sockets), held until the checks below are done.
    a.app.get(InstanceLease).onResync(() => {
      holding = true;
      return new Promise((resolve) => (finish = resolve));
    });
    await redis.stop();
    await redis.resume();
    try {
      await waitUntil(
        () => holding && a.app.get(RedisConnections).up,
        'Redis back and the write-back started',
        10_000,
      );
      const ready = await fetch(`${a.http}/health/ready`);
      expect(ready.status).toBe(503);
      expect(JSON.stringify(await ready.json())).toMatch(/writing this instance.s state back/);
      const ticket = await fetch(`${a.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(ticket.status).toBe(503);
      expect(Number(ticket.headers.get('retry-after'))).toBeGreaterThan(0);
      const upgrade = new Client(a.ws, { headers: { authorization: `Bearer ${token}` } });
      clients.push(upgrade);
      expect((await within(upgrade.refused, 'refused upgrade')).status).toBe(503);
    } finally {
      finish();
    }
    await waitUntil(() => synced(a), 'the write-back done');
    expect((await fetch(`${a.http}/health/ready`)).status).toBe(200);
    expect(await ticketStatus(a, token)).toBe(201);
  });
});

/**
 * A first boot against an empty Redis is not a data loss: nothing to alarm an operator, nothing
 * written back, tickets at once.
 */
describe.each(REDIS_MODES)('first boot on a fresh Redis (%s)', (mode: RedisMode) => {
  it('logs no data loss and writes nothing back', async () => {
    const backend = await startBackend(mode);
    const apps: TestApp[] = [];
    try {
      const env = { ...backend.env(), JWT_SECRET: SECRET, WS_HEARTBEAT_MS: '500' };
      apps.push(...(await twoInstances(env)));
      for (const app of apps) {
        expect(await app.ticket(await app.devToken('first'))).toMatchObject({ expiresIn: 30 });
        expect(app.logs.text).not.toMatch(
          /lost its data|instance lease lost|state written back|restore barrier/,
        );
      }
    } finally {
      await Promise.all(apps.map((app) => app.close()));
      await backend.stop();
    }
  }, 90_000);
});
