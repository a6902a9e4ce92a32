import type { ServerMessage } from '@switchboard/protocol';
import { RedisConnections } from '../../libs/nest/src/redis/redis.connections';
import { type TestApp, twoInstances, waitUntil } from '../support/app';
import { type RedisBackend, startBackend } from '../support/backends';
import type { RedisCluster } from '../support/redis-cluster';
import { testPrefix } from '../support/redis';
import { connected, type TestClient } from '../support/ws-client';

/**
 * What only a Redis Cluster shows: where channels and streams land, and a master failover (a
 * master SIGKILLed, its replica promoted) survived by running instances. The cluster-wide rules
 * themselves run on a cluster in the cluster, rooms, recovery and store suites.
 */
describe('Redis Cluster (REDIS_MODE=cluster, three masters, three replicas)', () => {
  let backend: RedisBackend;
  let cluster: RedisCluster;
  let a: TestApp;
  let b: TestApp;
  let prefix: string;
  const clients: TestClient[] = [];
  let seq = 0;
  const user = (): string => `rc${++seq}`;

  beforeAll(async () => {
    backend = await startBackend('cluster');
    cluster = backend.cluster!;
    prefix = testPrefix();
    const env = {
      ...backend.env(prefix),
      HISTORY_SIZE: '50',
      MAX_CONNECTIONS_PER_USER: '5',
      CONNECT_ATTEMPTS_PER_MINUTE: '1000',
      TICKETS_PER_MINUTE: '1000',
    };
    [a, b] = await twoInstances(env);
  }, 60_000);
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await backend?.stop();
  }, 30_000);

  async function connect(app: TestApp, userId: string): Promise<TestClient> {
    const client = await connected((await app.ticket(await app.devToken(userId))).url);
    clients.push(client);
    return client;
  }
  const say = (client: TestClient, room: string, text: string) =>
    client.send({ type: 'room.message', data: { room, text } });
  const messageSaying = (text: string) => (m: ServerMessage) =>
    m.type === 'room.message' && (m.data as { text: string }).text === text;

  it('puts a room’s channel and stream on the shard that owns its slot, and nowhere else', async () => {
    const room = 'placed';
    const [onA, onB] = [await connect(a, user()), await connect(b, user())];
    await onA.join(room);
    await onB.join(room);
    const channel = `${prefix}{r:${room}}`;
    const owner = await cluster.masterOf(await cluster.slotOf(channel));
    const masters = await Promise.all(
      [0, 5461, 10923].map((slot) => cluster.masterOf(slot)), // one slot of each master
    );
    const counts = await Promise.all(masters.map((m) => cluster.shardSubscribers(m, channel)));
    expect(counts.filter((n) => n > 0)).toEqual([2]); // A and B, both on the owner alone
    expect(counts[masters.indexOf(owner)]).toBe(2);

    say(onA, room, 'hello shard');
    expect((await onB.next(messageSaying('hello shard'))).offset).toBe(1);
    const client = owner.client();
    try {
      await client.connect();
      expect(await client.exists(`${prefix}stream:{r:${room}}:meta`)).toBe(1);
    } finally {
      client.disconnect();
    }
  });

  it('holds a subscriber link per master for the probe, connected where it has channels', () => {
    const links = a.app.get(RedisConnections).shardLinks();
    expect(links).toHaveLength(3);
    // ioredis connects a master's link once a channel of its slots is subscribed ('wait' before).
    expect(links.some((link) => link.status === 'ready')).toBe(true);
    expect(links.every((link) => ['ready', 'wait'].includes(link.status))).toBe(true);
  });

  it('survives the loss of the master that holds a room: fails fast meanwhile, then resumes by itself', async () => {
    const room = 'failover';
    const [ann, ben] = [user(), user()];
    const onA = await connect(a, ann);
    const onB = await connect(b, ben);
    const joined = await onA.join(room);
    await onB.join(room);
    say(onA, room, 'before');
    const before = await onB.next(messageSaying('before'));
    expect(before.offset).toBe(joined.position!.offset + 1);

    const channel = `${prefix}{r:${room}}`;
    const victim = await cluster.masterOf(await cluster.slotOf(channel));
    const probe = victim.client();
    await probe.connect();
    await probe.call('WAIT', 1, 2000); // the replica has everything: a failover loses nothing here
    probe.disconnect();
    await victim.kill();

    // While the slot has no master, the room answers at once that it is unavailable.
    const asked = Date.now();
    say(onA, room, 'during');
    const refused = await onA.next(
      (m) =>
        (m.type === 'error' && (m.data as { code: string }).code === 'unavailable') ||
        messageSaying('during')(m),
      10_000,
    );
    expect(['error', 'room.message']).toContain(refused.type); // either way, an answer
    expect(Date.now() - asked).toBeLessThan(5_000); // within the command timeout, not a hang

    await cluster.waitUntilHealthy(30_000); // the replica is promoted
    // No restart: each instance finds the new master, and its subscriptions move there.
    let after: ServerMessage | undefined;
    await waitUntil(
      async () => {
        say(onA, room, 'after');
        after = await onB.next(messageSaying('after'), 500).catch(() => undefined);
        return after !== undefined;
      },
      'a room message from A to reach B after the failover',
      20_000,
    );
    // The stream went on where it was: the offsets the replica had, then the next ones.
    expect(after!.offset).toBeGreaterThan(before.offset!);
    const history = await onB.request<{ messages: ServerMessage[] }>('room.history', {
      room,
      limit: 50,
    });
    const texts = history.messages.map((m) => (m.data as { text: string }).text);
    expect(texts[0]).toBe('before');
    expect(texts).toContain('after');

    // New sessions work on both instances: tickets, handshakes, user channels on the new master.
    const carl = user();
    await waitUntil(
      async () =>
        connect(b, carl).then(
          () => true,
          () => false,
        ),
      'a new connection on B after the failover',
      20_000,
    );
    const joinedAgain = await connect(a, ann); // a second socket of ann, recovering the room
    const recovered = await joinedAgain.join(room, { ...joined.position!, offset: before.offset! });
    expect(recovered.recovered).toBe(true);
    expect(await onA.presence(room)).toEqual([ann, ben].sort().map((id) => ({ id, name: id })));
  }, 90_000);
});
