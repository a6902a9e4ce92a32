import type { UserInfo } from '@switchboard/protocol';
import type { Session } from '../../libs/nest/src/core/session';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { RoomPolicy } from '../../libs/nest/src/realtime/rooms/room-policy';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { REDIS_MODES, type RedisBackend, startBackend } from '../support/backends';
import { connected, type TestClient } from '../support/ws-client';

interface RoomMessage {
  room: string;
  from: UserInfo;
  text: string;
  messageId: string;
}

const SECRET = 'rooms-test-secret-that-is-long-enough-0123456789';

/** Rooms, presence and typing across two instances on one Redis, or on a Redis Cluster (docs/protocol.md, Messages). */
describe.each(REDIS_MODES)('rooms across instances (%s Redis)', (mode) => {
  let a: TestApp;
  let b: TestApp;
  let env: Record<string, string>;
  let backend: RedisBackend;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    backend = await startBackend(mode);
    env = {
      ...backend.env(),
      JWT_SECRET: SECRET,
      MAX_CONNECTIONS_PER_USER: '2',
      WS_HEARTBEAT_MS: '500',
      // The tests poll presence.list; the per-socket rate limit has its own tests.
      WS_MESSAGES_PER_WINDOW: '1000',
    };
    [a, b] = await twoInstances(env);
  }, 60_000);
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await backend?.stop();
  }, 30_000);

  async function connect(
    app: TestApp | { ws: string },
    userId: string,
    name = userId,
  ): Promise<TestClient> {
    const issuer = 'app' in app ? app : a;
    const { ticket } = await issuer.ticket(await issuer.devToken(userId, { name }));
    const client = await connected(`${app.ws}?ticket=${ticket}`);
    clients.push(client);
    return client;
  }
  /** Joins, and the members the reply lists. */
  const join = async (client: TestClient, room: string): Promise<UserInfo[]> =>
    (await client.join(room)).members;
  const ids = (members: UserInfo[]) => members.map((m) => m.id).sort();

  it('joins, announces presence, and delivers room messages to every member on both instances', async () => {
    const alice = await connect(a, 'alice', 'Alice');
    const bob = await connect(b, 'bob', 'Bob');
    expect(await join(alice, 'team-1')).toEqual([{ id: 'alice', name: 'Alice' }]);
    expect(ids(await join(bob, 'team-1'))).toEqual(['alice', 'bob']);
    expect((await alice.nextOfType('presence.joined')).data).toEqual({
      room: 'team-1',
      user: { id: 'bob', name: 'Bob' },
    });

    bob.send({
      type: 'room.message',
      data: { room: 'team-1', text: 'e\u0301t\u00e9 \u202E<b>hi</b>' },
    });
    const [toAlice, toBob] = await Promise.all([
      alice.nextOfType<RoomMessage>('room.message'),
      bob.nextOfType<RoomMessage>('room.message'),
    ]);
    expect(toAlice.data).toEqual({
      room: 'team-1',
      from: { id: 'bob', name: 'Bob' },
      text: '\u00e9t\u00e9 <b>hi</b>',
      messageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(toBob.data?.messageId).toBe(toAlice.data?.messageId);

    bob.send({ type: 'room.leave', id: 'bye', data: { room: 'team-1' } });
    expect(await bob.nextOfType('room.left')).toMatchObject({
      id: 'bye',
      data: { room: 'team-1' },
    });
    expect((await alice.nextOfType('presence.left')).data).toEqual({
      room: 'team-1',
      user: { id: 'bob', name: 'Bob' },
    });
    alice.send({ type: 'room.message', data: { room: 'team-1', text: 'anyone?' } });
    await alice.nextOfType('room.message');
    alice.send({ type: 'ping', id: 'sync' });
    await alice.nextOfType('pong');
    expect(
      bob.messages.some(
        (m) => m.type === 'room.message' && (m.data as RoomMessage).text === 'anyone?',
      ),
    ).toBe(false);
  });

  it('lists each user once, however many connections they hold', async () => {
    const carol1 = await connect(a, 'carol');
    const carol2 = await connect(b, 'carol');
    const dave = await connect(b, 'dave');
    await join(carol1, 'lounge');
    await join(carol2, 'lounge');
    await join(dave, 'lounge');
    dave.send({ type: 'presence.list', id: 'who', data: { room: 'lounge' } });
    const list = await dave.nextOfType<{ room: string; members: UserInfo[]; count: number }>(
      'presence.list',
    );
    expect(list.id).toBe('who');
    expect(ids(list.data?.members ?? [])).toEqual(['carol', 'dave']);
    expect(list.data?.count).toBe(2);

    // Carol's second connection joining did not announce her again, and one of two leaving does not say she left.
    expect(dave.messages.filter((m) => m.type === 'presence.joined')).toHaveLength(0);
    carol1.close();
    await waitUntil(async () => {
      dave.send({ type: 'presence.list', data: { room: 'lounge' } });
      return (
        ids(
          (await dave.nextOfType<{ members: UserInfo[] }>('presence.list')).data?.members ?? [],
        ).join() === 'carol,dave'
      );
    }, 'the list after one of carol’s sockets left');
    expect(dave.messages.some((m) => m.type === 'presence.left')).toBe(false);
    carol2.close();
    expect((await dave.nextOfType('presence.left')).data).toEqual({
      room: 'lounge',
      user: { id: 'carol', name: 'carol' },
    });
  });

  it('sends typing to the other members, at most once per user per room per 2 s', async () => {
    const erin = await connect(a, 'erin');
    const frank = await connect(b, 'frank');
    await join(erin, 'desk');
    await join(frank, 'desk');
    for (let i = 0; i < 3; i++) {
      erin.send({ type: 'typing', data: { room: 'desk' } });
    }
    erin.send({ type: 'room.message', data: { room: 'desk', text: 'sentinel' } });
    await frank.nextOfType('room.message');
    expect(frank.messages.filter((m) => m.type === 'room.typing').map((m) => m.data)).toEqual([
      { room: 'desk', user: { id: 'erin', name: 'erin' } },
    ]);
    await erin.nextOfType('room.message');
    expect(erin.messages.some((m) => m.type === 'room.typing')).toBe(false);
  });

  it('throttles typing per user cluster-wide: two tabs on two instances make one room.typing', async () => {
    const tabOnA = await connect(a, 'ivy');
    const tabOnB = await connect(b, 'ivy');
    const jack = await connect(a, 'jack');
    for (const client of [tabOnA, tabOnB, jack]) {
      await join(client, 'desk2');
    }
    tabOnA.send({ type: 'typing', data: { room: 'desk2' } });
    tabOnB.send({ type: 'typing', data: { room: 'desk2' } });
    // Sentinels from both tabs: once jack has both, both typing requests were handled.
    tabOnA.send({ type: 'room.message', data: { room: 'desk2', text: 'from a' } });
    tabOnB.send({ type: 'room.message', data: { room: 'desk2', text: 'from b' } });
    await jack.nextOfType('room.message');
    await jack.nextOfType('room.message');
    expect(jack.messages.filter((m) => m.type === 'room.typing')).toHaveLength(1);
  });

  it('reaches a room from BroadcastService on either instance, except a given connection', async () => {
    const gina = await connect(a, 'gina');
    const hank = await connect(b, 'hank');
    await join(gina, 'ops');
    await join(hank, 'ops');
    await b.app.get(BroadcastService).toRoom('ops', 'deploy.started', { v: 2 });
    expect((await gina.nextOfType('deploy.started')).data).toEqual({ v: 2 });
    expect((await hank.nextOfType('deploy.started')).data).toEqual({ v: 2 });

    const hankId = hank.welcome.connectionId;
    await a.app
      .get(BroadcastService)
      .toRoom('ops', 'deploy.done', {}, { exceptConnectionId: hankId });
    await b.app.get(BroadcastService).toRoom('ops', 'sentinel', {});
    await gina.nextOfType('deploy.done');
    await hank.nextOfType('sentinel');
    expect(hank.messages.some((m) => m.type === 'deploy.done')).toBe(false);
  });
});

describe('a replacement RoomPolicy', () => {
  class TenantRoomPolicy extends RoomPolicy {
    canJoin(session: Session, room: string): boolean {
      return room.startsWith(`${session.userId.split('.')[0]}:`);
    }
  }

  it('decides who joins what', async () => {
    const app = await startApp({}, { realtime: { roomPolicy: TenantRoomPolicy } });
    try {
      const client = await connected((await app.ticket(await app.devToken('acme.alice'))).url);
      client.send({ type: 'room.join', id: 'own', data: { room: 'acme:general' } });
      expect((await client.nextOfType('room.joined')).id).toBe('own');
      client.send({ type: 'room.join', id: 'other', data: { room: 'globex:general' } });
      expect(await client.nextOfType('error')).toMatchObject({
        id: 'other',
        data: { code: 'forbidden' },
      });
      client.close();
    } finally {
      await app.close();
    }
  });
});
