import type {
  PresenceDiffData,
  PresenceListData,
  ServerMessage,
  TypingData,
  UserInfo,
} from '@switchboard/protocol';
import type { Session } from '../../libs/nest/src/core/session';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { RoomPolicy } from '../../libs/nest/src/realtime/rooms/room-policy';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { scrape } from '../support/prometheus';
import { REDIS_MODES, type RedisBackend, startBackend } from '../support/backends';
import { connected, type TestClient } from '../support/ws-client';

interface RoomMessage {
  room: string;
  from: UserInfo;
  text: string;
  messageId: string;
}

const SECRET = 'rooms-test-secret-that-is-long-enough-0123456789';
const BATCH_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
      PRESENCE_BATCH_MS: String(BATCH_MS),
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

  /** The next `presence.diff` of the room that satisfies `ok`, skipping earlier ones. */
  const diffUntil = (
    client: TestClient,
    room: string,
    ok: (diff: PresenceDiffData) => boolean,
  ): Promise<ServerMessage<PresenceDiffData>> =>
    client.next<PresenceDiffData>((m) => {
      const diff = m.data as PresenceDiffData;
      return m.type === 'presence.diff' && diff.room === room && ok(diff);
    });

  it('joins, tells the members in a batch, and delivers room messages to every member on both instances', async () => {
    const alice = await connect(a, 'alice', 'Alice');
    const bob = await connect(b, 'bob', 'Bob');
    expect(await join(alice, 'team-1')).toEqual([{ id: 'alice', name: 'Alice' }]);
    expect(ids(await join(bob, 'team-1'))).toEqual(['alice', 'bob']);
    const toAlice = await diffUntil(alice, 'team-1', (d) => d.joined.some((u) => u.id === 'bob'));
    expect(toAlice.data).toEqual({
      room: 'team-1',
      joined: expect.arrayContaining([{ id: 'bob', name: 'Bob' }]),
      left: [],
      count: 2,
    });

    bob.send({
      type: 'room.message',
      data: { room: 'team-1', text: 'e\u0301t\u00e9 \u202E<b>hi</b>' },
    });
    const [messageToAlice, messageToBob] = await Promise.all([
      alice.nextOfType<RoomMessage>('room.message'),
      bob.nextOfType<RoomMessage>('room.message'),
    ]);
    expect(messageToAlice.data).toEqual({
      room: 'team-1',
      from: { id: 'bob', name: 'Bob' },
      text: '\u00e9t\u00e9 <b>hi</b>',
      messageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(messageToBob.data?.messageId).toBe(messageToAlice.data?.messageId);

    bob.send({ type: 'room.leave', id: 'bye', data: { room: 'team-1' } });
    expect(await bob.nextOfType('room.left')).toMatchObject({
      id: 'bye',
      data: { room: 'team-1' },
    });
    expect((await diffUntil(alice, 'team-1', (d) => d.left.includes('bob'))).data).toEqual({
      room: 'team-1',
      joined: [],
      left: ['bob'],
      count: 1,
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
    const list = await dave.nextOfType<PresenceListData>('presence.list');
    expect(list.id).toBe('who');
    expect(list.data).toEqual({
      room: 'lounge',
      members: [
        { id: 'carol', name: 'carol' },
        { id: 'dave', name: 'dave' },
      ],
      count: 2,
    });

    // One of carol's two sockets leaving does not make her leave.
    carol1.close();
    await waitUntil(async () => (await dave.presence('lounge')).length === 2, 'the list');
    await sleep(BATCH_MS * 3);
    expect(
      dave.messages.some(
        (m) => m.type === 'presence.diff' && (m.data as PresenceDiffData).left.includes('carol'),
      ),
    ).toBe(false);
    carol2.close();
    expect((await diffUntil(dave, 'lounge', (d) => d.left.includes('carol'))).data).toEqual({
      room: 'lounge',
      joined: [],
      left: ['carol'],
      count: 1,
    });
  });

  it('batches a burst of joins and leaves on both instances: at most one presence frame per batch, and the last is exact', async () => {
    const watcher = await connect(a, 'watcher');
    await join(watcher, 'burst');
    const crowd = await Promise.all(
      Array.from({ length: 30 }, (_, i) => connect(i % 2 ? a : b, `crowd-${i}`)),
    );
    const started = Date.now();
    await Promise.all(crowd.map((client) => join(client, 'burst')));
    await Promise.all(
      crowd.slice(0, 10).map((client) => client.request('room.leave', { room: 'burst' })),
    );
    const elapsed = Date.now() - started;
    const last = await diffUntil(watcher, 'burst', (d) => d.count === 21);
    await sleep(BATCH_MS * 3); // nothing more may follow once the changes are told
    const frames = watcher.messages
      .concat(last)
      .filter(
        (m) => m.type.startsWith('presence.') && (m.data as { room: string }).room === 'burst',
      );
    expect(frames.every((m) => m.type === 'presence.diff')).toBe(true);
    // One frame per batch at most: never more than the batches the burst spanned, plus the
    // batches that told the changes of the other instance (one later each).
    expect(frames.length).toBeLessThanOrEqual(Math.ceil(elapsed / BATCH_MS) + 4);
    expect((frames.at(-1)?.data as PresenceDiffData).count).toBe(21);
    // Applying every diff in order gives the room as it is.
    const known = new Set(['watcher']);
    for (const { data } of frames) {
      const diff = data as PresenceDiffData;
      diff.joined.forEach((u) => known.add(u.id));
      diff.left.forEach((id) => known.delete(id));
    }
    expect([...known].sort()).toEqual(
      ['watcher', ...crowd.slice(10).map((c) => c.welcome.user.id)].sort(),
    );
    // Each member heard every batch of changes of both instances in one frame per batch.
    for (const client of crowd.slice(10, 14)) {
      const diffs = client.messages.filter((m) => m.type === 'presence.diff');
      const stamps = diffs.map((m) => m.ts);
      expect(stamps.every((ts, i) => i === 0 || ts - stamps[i - 1] >= BATCH_MS / 2)).toBe(true);
    }
  });

  it('pages presence.list with a cursor, never repeating or missing a member while others come and go', async () => {
    const steady = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        connect(i % 2 ? a : b, `p-${String(i).padStart(2, '0')}`),
      ),
    );
    await Promise.all(steady.map((client) => join(client, 'paged')));
    const reader = steady[0];
    const seen: string[] = [];
    let after: string | undefined;
    let churn = 0;
    for (;;) {
      const page: PresenceListData = await reader.request('presence.list', {
        room: 'paged',
        limit: 5,
        ...(after === undefined ? {} : { after }),
      });
      seen.push(...page.members.map((m) => m.id));
      if (page.next === undefined) {
        break;
      }
      after = page.next;
      // Others come (before and after the cursor) and go while the reader pages.
      const comer = await connect(churn % 2 ? a : b, `${churn % 2 ? 'a' : 'z'}-comer-${churn}`);
      churn += 1;
      await join(comer, 'paged');
      comer.close();
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(steady.map((c) => c.welcome.user.id)));
    expect([...seen].sort()).toEqual(seen);
    reader.send({ type: 'presence.list', id: 'too-many', data: { room: 'paged', limit: 501 } });
    expect((await reader.next((m) => m.id === 'too-many')).data).toMatchObject({
      code: 'validation_failed',
      details: { fields: { limit: ['limit must be a whole number from 1 to 500'] } },
    });
  });

  it('batches typing: one notice per batch naming who typed, from both instances, at most once per user per 2 s', async () => {
    const erin = await connect(a, 'erin');
    const frank = await connect(b, 'frank');
    const tabOnA = await connect(a, 'ivy');
    const tabOnB = await connect(b, 'ivy');
    for (const client of [erin, frank, tabOnA, tabOnB]) {
      await join(client, 'desk');
    }
    for (let i = 0; i < 3; i++) {
      erin.send({ type: 'typing', data: { room: 'desk' } });
    }
    tabOnA.send({ type: 'typing', data: { room: 'desk' } });
    tabOnB.send({ type: 'typing', data: { room: 'desk' } });
    const named = new Set<string>();
    while (!(named.has('erin') && named.has('ivy'))) {
      const notice = await frank.nextOfType<TypingData>('typing');
      expect(notice.data?.room).toBe('desk');
      const users = notice.data?.users.map((u) => u.id) ?? [];
      expect(new Set(users).size).toBe(users.length);
      users.forEach((id) => named.add(id));
    }
    await sleep(BATCH_MS * 3);
    // What came after: erin's repeats within 2 s were dropped; ivy's other tab (on the other
    // instance) may have named her once more, in a later batch.
    const all = frank.messages
      .filter((m) => m.type === 'typing')
      .flatMap((m) => (m.data as TypingData).users.map((u) => u.id));
    expect(all.filter((id) => id === 'erin')).toHaveLength(0);
    expect(all.filter((id) => id === 'ivy').length).toBeLessThanOrEqual(1);
    expect(all).not.toContain('frank');
  });

  it('switches between presence.diff and presence.count at PRESENCE_DIFF_MAX_MEMBERS, with no typing above it', async () => {
    const [c, d] = await twoInstances({ ...env, PRESENCE_DIFF_MAX_MEMBERS: '3' });
    try {
      const [u0, u1, u2, u3] = await Promise.all(
        ['t0', 't1', 't2', 't3'].map((id, i) => connect(i % 2 ? c : d, id)),
      );
      await join(u0, 'hall');
      await Promise.all([join(u1, 'hall'), join(u2, 'hall')]);
      await diffUntil(u0, 'hall', (diff) => diff.count === 3);
      await join(u3, 'hall');
      expect((await u0.nextOfType('presence.count')).data).toEqual({ room: 'hall', count: 4 });
      u1.send({ type: 'typing', data: { room: 'hall' } });
      await sleep(BATCH_MS * 4);
      expect(u0.messages.some((m) => m.type === 'typing')).toBe(false);
      await u3.request('room.leave', { room: 'hall' });
      expect((await diffUntil(u0, 'hall', (diff) => diff.count === 3)).data).toEqual({
        room: 'hall',
        joined: [],
        left: ['t3'],
        count: 3,
      });
    } finally {
      await Promise.all([c.close(), d.close()]);
    }
  });

  it('reaches a room from BroadcastService on either instance, except a given connection', async () => {
    const gina = await connect(a, 'gina');
    const hank = await connect(b, 'hank');
    await join(gina, 'ops');
    await join(hank, 'ops');
    const lagOnA = async () =>
      (await scrape(a.http)).get('ws_delivery_lag_seconds_count{path="remote"}') ?? 0;
    const before = await lagOnA();
    await b.app.get(BroadcastService).toRoom('ops', 'deploy.started', { v: 2 });
    expect((await gina.nextOfType('deploy.started')).data).toEqual({ v: 2 });
    expect((await hank.nextOfType('deploy.started')).data).toEqual({ v: 2 });
    // Published on B, written to gina's socket on A: a remote delivery, timed end to end.
    expect((await lagOnA()) - before).toBe(1);

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
