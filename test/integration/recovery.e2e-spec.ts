import type { ServerMessage, StreamPosition } from '@switchboard/protocol';
import Redis from 'ioredis';
import {
  BroadcastService,
  InvalidBroadcastError,
} from '../../libs/nest/src/broadcast/broadcast.service';
import { SkewedClock, startApp, type TestApp, twoInstances } from '../support/app';
import { type RedisBackend, startBackend } from '../support/backends';
import { connected, type TestClient } from '../support/ws-client';

const HISTORY_SIZE = 10;

/**
 * History and recovery: a client that comes back with the last position it holds gets exactly
 * what it missed, in order, before anything newer; beyond the history it is told so. In both modes:
 * embedded (one instance; "A" and "B" are the same one) and cluster mode (two instances) on one
 * Redis server and on a Redis Cluster.
 */
describe.each(['embedded', 'single', 'cluster'] as const)('history and recovery (%s)', (mode) => {
  let a: TestApp;
  let b: TestApp;
  let backend: RedisBackend | undefined;
  const clock = new SkewedClock();
  const clients: TestClient[] = [];
  let seq = 0;
  const fresh = (name: string): string => `${name}-${mode}-${++seq}`;

  beforeAll(async () => {
    const env: Record<string, string> = {
      HISTORY_SIZE: String(HISTORY_SIZE),
      MAX_CONNECTIONS_PER_USER: '10',
      CONNECT_ATTEMPTS_PER_MINUTE: '1000',
      TICKETS_PER_MINUTE: '1000',
    };
    if (mode === 'embedded') {
      a = b = await startApp(env, { clock });
    } else {
      backend = await startBackend(mode);
      [a, b] = await twoInstances({ ...env, ...backend.env() });
    }
  }, 60_000);
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all([...new Set([a, b])].map((app) => app?.close()));
    await backend?.stop();
  }, 30_000);

  async function connect(app: TestApp, userId: string, since?: StreamPosition) {
    const { url } = await app.ticket(await app.devToken(userId));
    const client = await connected(since ? `${url}&since=${since.epoch}:${since.offset}` : url);
    clients.push(client);
    return client;
  }
  /** The next `count` frames that carry an offset, in the order they came. */
  async function publications(client: TestClient, count: number): Promise<ServerMessage[]> {
    const got: ServerMessage[] = [];
    while (got.length < count) {
      got.push(await client.next((m) => m.offset !== undefined));
    }
    return got;
  }
  const say = (client: TestClient, room: string, text: string) =>
    client.send({ type: 'room.message', data: { room, text } });

  it('replays what a room published while the client was away, then goes on live', async () => {
    const room = fresh('room');
    const away = await connect(a, fresh('away'));
    const { position } = await away.join(room);
    away.close();

    const speaker = await connect(b, fresh('speaker'));
    await speaker.join(room);
    for (const text of ['one', 'two', 'three']) {
      say(speaker, room, text);
    }
    await publications(speaker, 3);
    await b.app.get(BroadcastService).toRoom(room, 'note.added', { n: 1 });
    await a.app.get(BroadcastService).toRoom(room, 'note.added', { n: 2 });

    const back = await connect(b, fresh('away'));
    const joined = await back.join(room, position);
    expect(joined).toMatchObject({ recovered: true, missed: 5 });
    expect(joined.position).toEqual({ epoch: position!.epoch, offset: position!.offset + 5 });
    const replay = await publications(back, 5);
    expect(replay.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5].map((n) => position!.offset + n));
    expect(replay.map((m) => [m.type, m.room])).toEqual([
      ['room.message', room],
      ['room.message', room],
      ['room.message', room],
      ['note.added', room],
      ['note.added', room],
    ]);
    expect(replay.slice(0, 3).map((m) => (m.data as { text: string }).text)).toEqual([
      'one',
      'two',
      'three',
    ]);
    say(speaker, room, 'live');
    const [live] = await publications(back, 1);
    expect(live).toMatchObject({ offset: position!.offset + 6, data: { text: 'live' } });
  });

  it('replays the user’s own stream from since in the upgrade URL, with the welcome saying so', async () => {
    const userId = fresh('owner');
    const first = await connect(a, userId);
    const position = first.welcome.position!;
    expect(position.offset).toBe(0);
    first.close();
    const broadcast = b.app.get(BroadcastService);
    await broadcast.toUser(userId, 'invoice.paid', { id: 1 });
    await broadcast.toUsers([userId, fresh('other')], 'team.update', { id: 2 });
    await a.app.get(BroadcastService).toUser(userId, 'invoice.paid', { id: 3 });

    const back = await connect(b, userId, position);
    expect(back.welcome).toMatchObject({
      position: { epoch: position.epoch, offset: 3 },
      recovered: true,
      missed: 3,
    });
    const replay = await publications(back, 3);
    expect(replay.map((m) => [m.type, m.offset, m.room])).toEqual([
      ['invoice.paid', 1, undefined],
      ['team.update', 2, undefined],
      ['invoice.paid', 3, undefined],
    ]);
    // toAll is in no stream: it carries no offset and is not replayed.
    await broadcast.toAll('maintenance', {});
    expect((await back.nextOfType('maintenance')).offset).toBeUndefined();
  });

  it('says recovered: false and replays nothing beyond HISTORY_SIZE or on another epoch', async () => {
    const room = fresh('busy');
    const away = await connect(a, fresh('away'));
    const { position } = await away.join(room);
    away.close();
    for (let i = 0; i <= HISTORY_SIZE; i++) {
      await b.app.get(BroadcastService).toRoom(room, 'tick', { i });
    }
    const late = await connect(a, fresh('away'));
    expect(await late.join(room, position)).toMatchObject({
      recovered: false,
      missed: 0,
      position: { epoch: position!.epoch, offset: HISTORY_SIZE + 1 },
    });
    const stranger = await connect(b, fresh('away'));
    expect(
      await stranger.join(room, { epoch: 'not-this-one', offset: HISTORY_SIZE + 1 }),
    ).toMatchObject({ recovered: false, missed: 0 });
    const ahead = await connect(b, fresh('away'));
    expect(
      await ahead.join(room, { epoch: position!.epoch, offset: HISTORY_SIZE + 5 }),
    ).toMatchObject({ recovered: false, missed: 0 });
    await b.app.get(BroadcastService).toRoom(room, 'tick', { i: 'last' });
    for (const client of [late, stranger, ahead]) {
      // Nothing replayed: the first frame with an offset is the live one.
      expect((await publications(client, 1))[0].offset).toBe(HISTORY_SIZE + 2);
    }
    const badSince = await connect(a, fresh('owner'), { epoch: '', offset: 0 });
    expect(badSince.welcome).toMatchObject({ recovered: false, missed: 0 });
  });

  it('delivers each offset once, ascending, while a publisher keeps publishing during the recovery', async () => {
    const room = fresh('race');
    const watcher = await connect(a, fresh('watcher'));
    const { position } = await watcher.join(room);
    watcher.close();
    const broadcast = b.app.get(BroadcastService);
    for (let i = 0; i < 5; i++) {
      await broadcast.toRoom(room, 'tick', { i });
    }
    // Six clients ask to recover at once, and five more publications go out while they do
    // (ten in all: within HISTORY_SIZE).
    const recovering = await Promise.all(
      Array.from({ length: 6 }, (_, i) => connect(i % 2 === 0 ? a : b, fresh('watcher'))),
    );
    const joins = recovering.map((client) => client.join(room, position));
    let published = 5;
    while (published < 10) {
      await broadcast.toRoom(room, 'tick', { i: published++ });
    }
    for (const joined of await Promise.all(joins)) {
      expect(joined).toMatchObject({ recovered: true });
    }
    for (const client of recovering) {
      const frames = await publications(client, published);
      expect(frames.map((m) => m.offset)).toEqual(
        Array.from({ length: published }, (_, i) => position!.offset + i + 1),
      );
    }
  });

  it('answers room.history to members: the last messages, or those before an offset, oldest first', async () => {
    const room = fresh('scroll');
    const member = await connect(a, fresh('member'));
    await member.join(room);
    for (let i = 1; i <= 4; i++) {
      say(member, room, `m${i}`);
    }
    await publications(member, 4);
    member.send({ type: 'room.history', id: 'h1', data: { room, limit: 2 } });
    const last = await member.next<{ messages: ServerMessage[] }>((m) => m.id === 'h1');
    expect(last.type).toBe('room.history');
    expect(last.data).toMatchObject({ room, position: { offset: 4 } });
    expect(last.data!.messages.map((m) => [m.offset, (m.data as { text: string }).text])).toEqual([
      [3, 'm3'],
      [4, 'm4'],
    ]);
    member.send({ type: 'room.history', id: 'h2', data: { room, before: 3 } });
    const earlier = await member.next<{ messages: ServerMessage[] }>((m) => m.id === 'h2');
    expect(earlier.data!.messages.map((m) => m.offset)).toEqual([1, 2]);
    expect(earlier.data!.messages[0]).toMatchObject({ type: 'room.message', room });

    const outsider = await connect(b, fresh('outsider'));
    outsider.send({ type: 'room.history', id: 'h3', data: { room } });
    expect((await outsider.next((m) => m.id === 'h3')).data).toMatchObject({ code: 'not_member' });
    outsider.send({ type: 'room.history', id: 'h4', data: { room, limit: 101 } });
    expect((await outsider.next((m) => m.id === 'h4')).data).toMatchObject({
      code: 'validation_failed',
    });
  });

  it('refuses a malformed since with validation_failed naming it, and keeps the socket', async () => {
    const client = await connect(a, fresh('sloppy'));
    for (const since of [
      { epoch: 5, offset: 1 },
      { epoch: 'e', offset: -1 },
      'e:1',
      { epoch: 'e' },
    ]) {
      client.send({ type: 'room.join', id: 'bad', data: { room: fresh('r'), since } });
      const error = await client.next<{ code: string; details: { fields: object } }>(
        (m) => m.id === 'bad',
      );
      expect(error.type).toBe('error');
      expect(error.data).toMatchObject({ code: 'validation_failed' });
      expect(Object.keys(error.data!.details.fields)).toEqual(['since']);
    }
    await expect(client.join(fresh('r'))).resolves.toMatchObject({ count: 1 });
  });

  it('toUsers keeps a stream only for users who connected lately, and takes 1,000 at most', async () => {
    const online = fresh('online');
    const client = await connect(a, online);
    const never = Array.from({ length: 999 }, (_, i) => fresh(`never${i}`));
    const broadcast = b.app.get(BroadcastService);
    await broadcast.toUsers([...never, online], 'notice', { n: 1 });
    expect(await client.nextOfType('notice')).toMatchObject({ offset: 1, data: { n: 1 } });
    if (backend?.mode === 'single') {
      const redis = new Redis(backend.url);
      try {
        const kept = (name: string) => redis.keys(`${a.config.redisPrefix}stream:{u:${name}*`);
        expect(await kept('never')).toEqual([]);
        expect(await kept(online)).toHaveLength(2); // its meta and its log
      } finally {
        redis.disconnect();
      }
    }
    await expect(
      broadcast.toUsers([...never, online, 'one-too-many'], 'notice', {}),
    ).rejects.toThrow(InvalidBroadcastError);
  });

  it('answers a second room.join of a room the socket is in with its position', async () => {
    const room = fresh('again');
    const client = await connect(a, fresh('again'));
    const { position } = await client.join(room);
    say(client, room, 'one');
    say(client, room, 'two');
    await publications(client, 2);
    expect(await client.join(room)).toMatchObject({
      count: 1,
      position: { epoch: position!.epoch, offset: 2 },
    });
  });

  it('answers huge offsets with recovered: false or validation_failed, and no Redis error', async () => {
    const room = fresh('huge');
    const client = await connect(a, fresh('huge'));
    const { position } = await client.join(room);
    await client.request('room.leave', { room });
    const errors = async () =>
      (
        (await (await fetch(`${a.http}/metrics`)).text()).match(
          /^redis_errors_total\{.*\} (\d+)/gm,
        ) ?? []
      )
        .map((line) => Number(line.split(' ').pop()))
        .reduce((sum, value) => sum + value, 0);
    const before = await errors();
    for (const offset of [1e14, 1e14 + 1, 2 ** 52, Number.MAX_SAFE_INTEGER]) {
      expect(await client.join(room, { epoch: position!.epoch, offset })).toMatchObject({
        recovered: false,
      });
      await client.request('room.leave', { room });
    }
    await client.join(room);
    for (const before of [1e14, Number.MAX_SAFE_INTEGER]) {
      await expect(client.request('room.history', { room, before })).resolves.toMatchObject({
        messages: [],
      });
    }
    for (const before of [1e21, Number.MAX_SAFE_INTEGER + 2]) {
      await expect(client.request('room.history', { room, before })).rejects.toThrow(
        /validation_failed/,
      );
    }
    expect(await errors()).toBe(before);
  });

  if (mode === 'embedded') {
    it('says recovered: false once the history outlived HISTORY_TTL_S', async () => {
      const room = fresh('stale');
      const away = await connect(a, fresh('away'));
      const { position } = await away.join(room);
      away.close();
      await a.app.get(BroadcastService).toRoom(room, 'tick', {});
      clock.advance(601_000); // past the default HISTORY_TTL_S of 600 s
      const back = await connect(a, fresh('away'));
      expect(await back.join(room, position)).toMatchObject({
        recovered: false,
        position: { epoch: position!.epoch, offset: 1 },
      });
      // A client that missed nothing still recovers: the position outlives the history.
      const current = await connect(a, fresh('away'));
      expect(await current.join(room, { epoch: position!.epoch, offset: 1 })).toMatchObject({
        recovered: true,
        missed: 0,
      });
    });
  }
});
