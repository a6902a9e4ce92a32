import WebSocket from 'ws';
import { SwitchboardClient, type WebSocketFactory } from '@switchboard/client';
import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../src/broadcast/broadcast.service';
import { ConnectionRegistry } from '../../src/realtime/connections/connection-registry.interface';
import { InstanceLease } from '../../src/redis/instance-lease';
import { RedisConnections } from '../../src/redis/redis.connections';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { RedisServer, testPrefix } from '../support/redis';
import { connected, type TestClient, TestClient as Client, within } from '../support/ws-client';

const SECRET = 'data-loss-test-secret-that-is-long-enough-012';

/**
 * Redis that comes back without its data (a restart without persistence, as the test's
 * redis-server runs): each instance writes back its connections, presence and the revocations it
 * has seen, and is unready and issues no ticket until it has (docs/operations.md, Cluster mode). Also the other side of
 * the lease: the members of a SIGKILLed instance are announced as gone, once.
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
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
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

  it('rebuilds presence and the connection registry of the sockets still open', async () => {
    const alice = await connect(a, 'alice');
    const bob = await connect(b, 'bob');
    await alice.join('kept');
    await bob.join('kept');
    expect((await alice.presence('kept')).map((m) => m.id)).toEqual(['alice', 'bob']);

    await loseRedisData();
    expect((await alice.presence('kept')).map((m) => m.id)).toEqual(['alice', 'bob']);
    expect((await bob.presence('kept')).map((m) => m.id)).toEqual(['alice', 'bob']);
    const registry = a.app.get<ConnectionRegistry>(ConnectionRegistry);
    expect(await registry.ofUser('alice')).toHaveLength(1);
    expect(await registry.ofUser('bob')).toHaveLength(1);
    // Nobody announced anyone as gone, so nobody is announced as back.
    expect(alice.messages.filter((m) => m.type.startsWith('presence.'))).toEqual([
      expect.objectContaining({ type: 'presence.joined' }),
    ]);
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
      WebSocket: WebSocket as unknown as WebSocketFactory,
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
