import type { PresenceDiffData, ServerMessage } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { ConnectionRegistry } from '../../libs/nest/src/realtime/connections/connection-registry.interface';
import { InstanceLease } from '../../libs/nest/src/redis/instance-lease';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { RedisServer, testPrefix } from '../support/redis';
import { spawnServer } from '../support/server-process';
import { connected, type TestClient } from '../support/ws-client';

/**
 * An instance killed with SIGKILL (the built server, as a process) next to two in-process
 * instances on one Redis: within 2 × WS_HEARTBEAT_MS one survivor purges it, its users are not
 * locked out, and the rooms hear that its members are gone, with exact counts.
 */
describe('an instance killed with SIGKILL', () => {
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
      JWT_SECRET: 'kill-test-secret-that-is-long-enough-0123',
      WS_HEARTBEAT_MS: '500',
      WS_MESSAGES_PER_WINDOW: '1000',
    };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await redis.stop();
  });

  async function connect(app: TestApp | { ws: string }, userId: string): Promise<TestClient> {
    const { ticket } = await a.ticket(await a.devToken(userId));
    const client = await connected(`${app.ws}?ticket=${ticket}`);
    clients.push(client);
    return client;
  }
  /** Who is in the room, by id. */
  const presence = async (client: TestClient, room: string): Promise<string[]> =>
    (await client.presence(room)).map((member) => member.id);

  it('forgets its connections at once for a newcomer, and its registry entries within 2 × heartbeat', async () => {
    const doomed = await spawnServer(env);
    try {
      await connect(doomed, 'phoenix');
      const registry = a.app.get<ConnectionRegistry>(ConnectionRegistry);
      expect(await registry.ofUser('phoenix')).toHaveLength(1);

      doomed.child.kill('SIGKILL');
      await doomed.exited;
      const killedAt = Date.now();
      // The user is not locked out: a new connection on a survivor is accepted at once.
      const onSurvivor = await connect(a, 'phoenix');
      expect(onSurvivor.socket.readyState).toBe(onSurvivor.socket.OPEN);
      await waitUntil(
        async () => (await registry.ofUser('phoenix')).length === 1,
        'the dead entry purged',
        3000,
      );
      // 2 × WS_HEARTBEAT_MS, with room for a loaded machine.
      expect(Date.now() - killedAt).toBeLessThan(2000);
      expect((await registry.ofUser('phoenix'))[0].connectionId).toBe(
        onSurvivor.welcome.connectionId,
      );
    } finally {
      await doomed.stop('SIGKILL');
    }
  });

  it('loses nothing of a client that comes back to a survivor with its positions', async () => {
    const doomed = await spawnServer(env);
    try {
      const client = await connect(doomed, 'nomad');
      const own = client.welcome.position!;
      const { position } = await client.join('caravan');
      const broadcast = b.app.get(BroadcastService);
      await broadcast.toRoom('caravan', 'stop', { n: 1 });
      expect(await client.nextOfType('stop')).toMatchObject({ offset: position!.offset + 1 });

      doomed.child.kill('SIGKILL');
      await doomed.exited;
      await broadcast.toRoom('caravan', 'stop', { n: 2 });
      await broadcast.toUser('nomad', 'letter', { n: 1 });
      await broadcast.toRoom('caravan', 'stop', { n: 3 });

      // Back on a survivor, from the positions it had: everything, once, in order.
      const { ticket } = await a.ticket(await a.devToken('nomad'));
      const back = await connected(`${a.ws}?ticket=${ticket}&since=${own.epoch}:${own.offset}`);
      clients.push(back);
      expect(back.welcome).toMatchObject({ recovered: true, missed: 1 });
      expect(await back.nextOfType('letter')).toMatchObject({ offset: own.offset + 1 });
      const joined = await back.join('caravan', {
        epoch: position!.epoch,
        offset: position!.offset + 1,
      });
      expect(joined).toMatchObject({ recovered: true, missed: 2 });
      const replay = [await back.nextOfType('stop'), await back.nextOfType('stop')];
      expect(replay.map((m) => [m.offset, (m.data as { n: number }).n])).toEqual([
        [position!.offset + 2, 2],
        [position!.offset + 3, 3],
      ]);
    } finally {
      await doomed.stop('SIGKILL');
    }
  });

  it('tells every member on every survivor that its members left, with the exact count', async () => {
    const doomed = await spawnServer(env);
    try {
      const onA = await connect(a, 'watcher-a');
      const onB = await connect(b, 'watcher-b');
      const carol = await connect(doomed, 'carol');
      for (const client of [onA, onB, carol]) {
        await client.join('wake');
      }
      await waitUntil(async () => (await presence(onA, 'wake')).length === 3, 'carol present');

      doomed.child.kill('SIGKILL');
      await doomed.exited;
      const killedAt = Date.now();
      const carolLeft = (m: ServerMessage) =>
        m.type === 'presence.diff' && (m.data as PresenceDiffData).left.includes('carol');
      const [leftA, leftB] = await Promise.all([
        onA.next(carolLeft, 3000),
        onB.next(carolLeft, 3000),
      ]);
      expect(Date.now() - killedAt).toBeLessThan(2000);
      for (const left of [leftA, leftB]) {
        expect(left.data).toEqual({ room: 'wake', joined: [], left: ['carol'], count: 2 });
      }
      expect(await presence(onA, 'wake')).toEqual(['watcher-a', 'watcher-b']);
      // Each survivor renews several times more: nobody purges it a second time.
      await Promise.all(
        [a, b].flatMap((app) => [1, 2, 3].map(() => app.app.get(InstanceLease).renew())),
      );
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await presence(onB, 'wake')).toEqual(['watcher-a', 'watcher-b']);
      for (const watcher of [onA, onB]) {
        expect(watcher.messages.filter(carolLeft)).toEqual([]);
      }
    } finally {
      await doomed.stop('SIGKILL');
    }
  });
});
