import type { PresenceDiffData } from '@switchboard/protocol';
import { Hub } from '../../libs/nest/src/core/hub';
import { type RedisClient, RedisConnections } from '../../libs/nest/src/redis/redis.connections';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { hsToken } from '../support/jwt';
import { suiteRedis, testPrefix } from '../support/redis';
import { connected, type TestClient } from '../support/ws-client';

/**
 * A socket that closes while its messages are still being handled leaves nothing behind
 * (docs/architecture.md): no room membership, presence entry, subscription, or hub index entry, whether the close
 * comes before, during or after each await of the handlers.
 */
describe.each([
  ['embedded', false],
  ['cluster', true],
])('closing mid-work (%s mode)', (_mode, cluster) => {
  let app: TestApp;
  let observer: TestApp | null = null;
  let stopRedis: () => Promise<void> = () => Promise.resolve();
  let redis: RedisClient | null = null;
  let prefix = '';
  const clients: TestClient[] = [];

  beforeAll(async () => {
    const env: Record<string, string> = { WS_MESSAGES_PER_WINDOW: '1000' };
    if (cluster) {
      const server = await suiteRedis();
      stopRedis = server.stop;
      prefix = testPrefix();
      [app, observer] = await twoInstances({ ...env, REDIS_URL: server.url, REDIS_PREFIX: prefix });
      redis = app.app.get(RedisConnections).command;
    } else {
      app = await startApp(env);
    }
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await app.close();
    await observer?.close();
    await stopRedis();
  });

  async function connect(userId: string, on: TestApp = app): Promise<TestClient> {
    const client = await connected((await on.ticket(await on.devToken(userId))).url);
    clients.push(client);
    return client;
  }

  /** What the instance and Redis still hold for these rooms. */
  async function leftovers(rooms: string[]): Promise<string[]> {
    const hub = app.app.get(Hub);
    const found = rooms.filter((room) => hub.ofRoom(room).size > 0).map((r) => `hub:${r}`);
    if (redis !== null) {
      const channels = (await redis.pubsub('CHANNELS', `${prefix}r:burst-*`)) as string[];
      found.push(...channels.map((channel) => `subscribed:${channel}`));
      for (const room of rooms) {
        const key = `${prefix}presence:{${room}}`;
        if ((await redis.hlen(key)) > 0 || (await redis.zcard(`${key}:ids`)) > 0) {
          found.push(`presence:${room}`);
        }
      }
    }
    return found;
  }

  it('undoes a burst of joins that a client sent just before it went away', async () => {
    for (let round = 0; round < 5; round++) {
      const rooms = Array.from({ length: 20 }, (_, i) => `burst-${round}-${i}`);
      const client = await connect(`burst${round}`);
      for (const room of rooms) {
        client.send({ type: 'room.join', data: { room } });
      }
      // Close at once, with the first joins in flight and the rest still queued.
      client.socket.close();
      await waitUntil(
        async () => (await leftovers(rooms)).length === 0 && app.app.get(Hub).size === 0,
        `no state left for ${rooms[0]}…`,
      );
    }
  });

  it('a watcher sees the user leave every room it was seen joining', async () => {
    const watcherApp = observer ?? app;
    const watcher = await connect('watcher', watcherApp);
    const rooms = Array.from({ length: 10 }, (_, i) => `burst-watched-${i}`);
    for (const room of rooms) {
      watcher.send({ type: 'room.join', data: { room } });
      await watcher.nextOfType('room.joined');
    }
    const leaver = await connect('leaver');
    for (const room of rooms) {
      leaver.send({ type: 'room.join', data: { room } });
    }
    leaver.socket.close();
    await waitUntil(async () => {
      for (const room of rooms) {
        watcher.send({ type: 'presence.list', data: { room } });
        const list = await watcher.nextOfType<{ count: number }>('presence.list');
        if (list.data?.count !== 1) {
          return false;
        }
      }
      return true;
    }, 'every room back to the watcher alone');
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // four batches
    // Whatever the diffs said of the leaver along the way, the last one of each room says gone.
    for (const room of rooms) {
      const said = watcher.messages
        .filter((m) => m.type === 'presence.diff' && (m.data as PresenceDiffData).room === room)
        .map((m) => m.data as PresenceDiffData)
        .filter(
          (diff) => diff.joined.some((u) => u.id === 'leaver') || diff.left.includes('leaver'),
        );
      expect(said.at(-1) ?? { left: ['leaver'], count: 1 }).toMatchObject({
        left: ['leaver'],
        count: 1,
      });
    }
  });

  it('a session.refresh handled after the close does not re-index the socket', async () => {
    const hub = app.app.get(Hub);
    const secret = app.config.jwt.key.kind === 'secret' ? app.config.jwt.key.secret : '';
    for (let round = 0; round < 5; round++) {
      const userId = `refresher${round}`;
      const rooms = [`burst-refresh-${round}-a`, `burst-refresh-${round}-b`];
      const client = await connect(userId);
      // Joins first, so that the refresh is still queued or in flight when the close arrives.
      for (const room of rooms) {
        client.send({ type: 'room.join', data: { room } });
      }
      const fresh = await hsToken({ sub: userId, sid: `fresh-${round}` }, secret);
      client.send({ type: 'session.refresh', data: { token: fresh } });
      client.socket.close();
      // The rooms are left once the socket's queue is idle: the refresh has been dealt with then.
      await waitUntil(
        async () => hub.size === 0 && (await leftovers(rooms)).length === 0,
        'the socket and its rooms gone',
      );
      expect(hub.ofSession(`fresh-${round}`)).toHaveLength(0);
      expect(hub.ofUser(userId)).toHaveLength(0);
    }
  });
});
