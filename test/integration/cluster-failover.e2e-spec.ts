import type { ErrorData, ServerMessage } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { RedisConnections } from '../../libs/nest/src/redis/redis.connections';
import { type TestApp, twoInstances, waitUntil } from '../support/app';
import { type RedisBackend, startBackend } from '../support/backends';
import type { RedisCluster } from '../support/redis-cluster';
import { testPrefix } from '../support/redis';
import { connected, type TestClient, within } from '../support/ws-client';

/** How often the sender says something while the cluster moves under it. */
const SEND_EVERY_MS = 25;
const METRICS_TOKEN = 'metrics-token-0123456789';
/** How long readiness reports a lost subscription that nothing resolved (the probe interval). */
const PROBE_INTERVAL_MS = 1_500;

/**
 * A Redis Cluster moving a room's slot under traffic (issue 21): a manual failover of the master
 * that owns it, and a migration of the slot to another master. The socket whose message was in
 * flight on that shard must go on: every message it sent is answered (delivered, or refused with
 * `unavailable`), its `ping` gets a `pong`, broadcasts settle, and the room's other instance gets
 * every delivered message once, in offset order.
 */
describe('Redis Cluster: a failover or a slot move under traffic wedges nothing', () => {
  let backend: RedisBackend;
  let cluster: RedisCluster;
  let a: TestApp;
  let b: TestApp;
  let prefix: string;
  const clients: TestClient[] = [];
  let seq = 0;

  beforeAll(async () => {
    backend = await startBackend('cluster');
    cluster = backend.cluster!;
    prefix = testPrefix();
    const env = {
      ...backend.env(prefix),
      HISTORY_SIZE: '1000',
      WS_MESSAGES_PER_WINDOW: '100000',
      CONNECT_ATTEMPTS_PER_MINUTE: '1000',
      TICKETS_PER_MINUTE: '1000',
      METRICS_TOKEN,
    };
    [a, b] = await twoInstances(env, { timings: { redisProbeIntervalMs: PROBE_INTERVAL_MS } });
  }, 60_000);
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await backend?.stop();
  }, 30_000);

  const ready = async (app: TestApp): Promise<{ status: number; body: unknown }> => {
    const response = await fetch(`${app.http}/health/ready`);
    return { status: response.status, body: await response.json() };
  };
  const subscriptionErrors = async (app: TestApp): Promise<number> => {
    const response = await fetch(`${app.http}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    const match = /^redis_errors_total\{kind="subscription"\} (\d+)$/m.exec(await response.text());
    return Number(match?.[1] ?? 0);
  };

  async function connect(app: TestApp): Promise<TestClient> {
    const client = await connected((await app.ticket(await app.devToken(`cf${++seq}`))).url);
    clients.push(client);
    return client;
  }

  /**
   * Sends `room.message`s (and, every tenth, a `toRoom` broadcast from each instance) until
   * `move` has finished and a few more went out after it; then checks what the issue requires.
   */
  async function underTraffic(room: string, move: (slot: number) => Promise<void>): Promise<void> {
    const sender = await connect(a);
    const watcher = await connect(b);
    await sender.join(room);
    await watcher.join(room);
    const slot = await cluster.slotOf(`${prefix}{r:${room}}`);
    const errorsBefore = (await subscriptionErrors(a)) + (await subscriptionErrors(b));

    const sent: string[] = [];
    const broadcasts: Array<Promise<number>> = [];
    const broadcast = (app: TestApp): Promise<number> => {
      const started = Date.now();
      return app.app
        .get(BroadcastService)
        .toRoom(room, 'notice', { n: sent.length })
        .catch((error: Error) => {
          expect(error.name).toBe('BroadcastUnavailableError');
        })
        .then(() => Date.now() - started);
    };
    const traffic = setInterval(() => {
      const text = `m${sent.length}`;
      sent.push(text);
      sender.send({ type: 'room.message', id: text, data: { room, text } });
      if (sent.length % 10 === 0) {
        broadcasts.push(broadcast(a), broadcast(b));
      }
    }, SEND_EVERY_MS);
    try {
      await waitUntil(() => sent.length >= 10, 'traffic before the move');
      await move(slot);
      const moved = sent.length;
      await waitUntil(() => sent.length >= moved + 20, 'traffic after the move');
    } finally {
      clearInterval(traffic);
    }

    // The socket is not wedged: a ping behind everything it sent is answered.
    const pinged = Date.now();
    sender.send({ type: 'ping', id: 'after' });
    await sender.next((m) => m.type === 'pong' && m.id === 'after', 10_000);
    expect(Date.now() - pinged).toBeLessThan(10_000);

    // Every message is answered: delivered back to its sender, or refused with `unavailable`.
    const delivered = (client: TestClient): string[] =>
      client.messages
        .filter((m) => m.type === 'room.message')
        .map((m) => (m.data as { text: string }).text);
    const refused = (): string[] =>
      sender.messages
        .filter((m) => m.type === 'error')
        .map((m) => {
          expect((m.data as ErrorData).code).toBe('unavailable');
          expect((m.data as ErrorData).details).toEqual({ retryAfterMs: expect.any(Number) });
          return m.id!;
        });
    const unanswered = (): string[] => {
      const answered = new Set([...delivered(sender), ...refused()]);
      return sent.filter((text) => !answered.has(text));
    };
    /** What the instances warned about, for a failure's message. */
    const warnings = (): string =>
      JSON.stringify(
        [a, b].flatMap((app) =>
          app.logs
            .parsed()
            .filter((line) => line.level === 'warn' && line.context === 'RedisBroker'),
        ),
      );
    await waitUntil(() => unanswered().length === 0, 'an answer to every message', 10_000).catch(
      (error: Error) => {
        throw new Error(`${error.message}: ${unanswered().join(' ')}; warnings: ${warnings()}`);
      },
    );
    const accepted = new Set(delivered(sender));
    expect(refused().filter((text) => accepted.has(text))).toEqual([]);

    // The other instance got every delivered message, once each, in offset order.
    const missing = (): string[] => {
      const seen = new Set(delivered(watcher));
      return [...accepted].filter((text) => !seen.has(text));
    };
    await waitUntil(
      () => missing().length === 0,
      'every delivered message on the other instance',
      10_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${missing().join(' ')}; warnings: ${warnings()}`);
    });
    const seen = watcher.messages.filter((m) => m.type === 'room.message');
    expect(new Set(delivered(watcher))).toEqual(accepted);
    expect(seen).toHaveLength(accepted.size);
    const offsets = seen.map((m: ServerMessage) => m.offset!);
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y));

    // Broadcasts settled, each within the bound on a wait for Redis.
    const durations = await within(Promise.all(broadcasts), 'every broadcast to settle', 10_000);
    expect(Math.max(...durations)).toBeLessThan(5_000);
    await within(broadcast(a), 'a broadcast after the move', 3_000);

    // The shard dropped both instances' subscriptions when the slot left it: counted, and
    // readiness is back once they were moved.
    expect((await subscriptionErrors(a)) + (await subscriptionErrors(b))).toBeGreaterThan(
      errorsBefore,
    );
    await waitUntil(
      async () => (await ready(a)).status === 200 && (await ready(b)).status === 200,
      'both instances ready again',
      10_000,
    );
  }

  it('survives CLUSTER FAILOVER of the master that owns the room', async () => {
    await underTraffic('failover', async (slot) => {
      const replica = await cluster.replicaOf(await cluster.masterOf(slot));
      await cluster.failover(replica, slot);
    });
  }, 30_000);

  it('survives the migration of the room’s slot to another master', async () => {
    await underTraffic('migrated', async (slot) => {
      const owner = await cluster.masterOf(slot);
      const masters = await Promise.all([0, 5461, 10923].map((s) => cluster.masterOf(s)));
      await cluster.migrateSlot(
        slot,
        masters.find((m) => m !== owner)!,
      );
    });
  }, 30_000);

  it('subscribes a channel again whose subscription was lost without a word', async () => {
    const room = 'silent';
    const [sender, local, remote] = [await connect(a), await connect(a), await connect(b)];
    for (const client of [sender, local, remote]) {
      await client.join(room);
    }
    const channel = `${prefix}{r:${room}}`;
    const owner = await cluster.masterOf(await cluster.slotOf(channel));
    // Behind ioredis' back: nothing tells it, and the slot map does not change. The report of the
    // loss is recorded but asks ioredis for nothing, so that only the broker can mend it.
    const redis = a.app.get(RedisConnections);
    const reported = jest.spyOn(redis, 'subscriptionLost').mockImplementation(() => undefined);
    await waitUntil(
      async () => (await cluster.shardSubscribers(owner, channel)) === 2,
      'A and B subscribed',
    );
    const link = redis.shardLinks().find((l) => l.options.port === owner.port);
    await link!.sunsubscribe(channel);
    expect(await cluster.shardSubscribers(owner, channel)).toBe(1); // B's alone

    // The echo never comes: past its bound the publication is read from history.
    sender.send({ type: 'room.message', id: 'first', data: { room, text: 'first' } });
    for (const client of [sender, local, remote]) {
      await client.next((m) => m.type === 'room.message', 10_000);
    }
    const pinged = Date.now();
    sender.send({ type: 'ping', id: 'silent' });
    await sender.next((m) => m.type === 'pong' && m.id === 'silent', 10_000);
    expect(Date.now() - pinged).toBeLessThan(1_000);

    // Subscribed again before it was read back: B's messages reach A's sockets through pub/sub.
    expect(await cluster.shardSubscribers(owner, channel)).toBe(2);
    remote.send({ type: 'room.message', data: { room, text: 'from b' } });
    const said = (text: string) => (m: ServerMessage) =>
      m.type === 'room.message' && (m.data as { text: string }).text === text;
    await local.next(said('from b'), 10_000);
    const sent = Date.now();
    sender.send({ type: 'room.message', data: { room, text: 'second' } });
    await sender.next(said('second'), 10_000);
    expect(Date.now() - sent).toBeLessThan(a.config.timings.redisProbeTimeoutMs); // no echo wait
    expect(reported).toHaveBeenCalled();
    reported.mockRestore();
  }, 30_000);

  it('reports a lost subscription in readiness until it is resolved', async () => {
    await waitUntil(async () => (await ready(a)).status === 200, 'a ready', 10_000);
    a.app.get(RedisConnections).subscriptionLost();
    expect(await ready(a)).toMatchObject({
      status: 503,
      body: { error: { redis: { status: 'down', message: expect.stringMatching(/lost/) } } },
    });
    // Nothing moved (the slot map is unchanged): the report lapses after a probe interval.
    await waitUntil(async () => (await ready(a)).status === 200, 'a ready again', 10_000);
  }, 30_000);
});
