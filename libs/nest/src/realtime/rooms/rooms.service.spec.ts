import { ErrorCode } from '@switchboard/protocol';
import { unitKit } from '../../../../../test/support/unit-kit';
import { ConnectionClosedError } from '../../core/connection';
import { ClientError } from '../messages/client-error';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { foldDiffs, PresenceBatches } from '../presence/presence-batches';
import { ClaimsRoomPolicy } from './room-policy';
import { RoomsService } from './rooms.service';

/**
 * A RoomsService on a unit kit's core (configured by `env`), with in-memory presence, the default
 * room policy, and presence batches that the test flushes itself (their timer is never started);
 * started before the describe's tests and stopped after them. `join` joins as the router does:
 * the reply, then what follows it.
 */
function roomsSuite(env: Record<string, string>) {
  const kit = unitKit(env);
  const presence = new MemoryPresenceStore();
  const batches = new PresenceBatches(kit.hub, kit.node, presence, kit.config);
  const rooms = new RoomsService(
    kit.hub,
    kit.node,
    kit.streams,
    kit.instance,
    new ClaimsRoomPolicy(),
    presence,
    batches,
    kit.lease,
  );
  beforeAll(async () => {
    await kit.init();
  });
  afterAll(() => {
    rooms.onApplicationShutdown();
    batches.onApplicationShutdown();
    kit.dispose();
  });
  const join = async (...args: Parameters<RoomsService['join']>) => {
    const { data, after } = await rooms.join(...args);
    after?.();
    return data;
  };
  return { kit, rooms, batches, join };
}

/** One batch told: its frames go out at most one batch (10 ms here) after the last. */
async function flush(batches: PresenceBatches): Promise<void> {
  await batches.flush();
  await new Promise((resolve) => setTimeout(resolve, 25));
}

type Frames = { frames(): Array<{ type: string; data?: unknown }> };
const types = (socket: Frames) => socket.frames().map((frame) => frame.type);
const ofType = (socket: Frames, type: string) =>
  socket
    .frames()
    .filter((frame) => frame.type === type)
    .map((frame) => frame.data);

describe('RoomsService', () => {
  const { kit, rooms, batches, join } = roomsSuite({ PRESENCE_BATCH_MS: '10' });

  it('joins and lists everyone; the members hear of the newcomer in the next batch', async () => {
    const ann = kit.connect('ann');
    const ben = kit.connect('ben');
    expect(await join(ann.connection, 'lobby')).toEqual({
      room: 'lobby',
      members: [{ id: 'ann', name: 'ann' }],
      count: 1,
      position: { epoch: expect.any(String) as string, offset: 0 },
    });
    expect((await join(ben.connection, 'lobby')).count).toBe(2);
    expect(types(ann.socket)).toEqual([]);
    await flush(batches);
    const diff = {
      room: 'lobby',
      joined: [
        { id: 'ann', name: 'ann' },
        { id: 'ben', name: 'ben' },
      ],
      left: [],
      count: 2,
    };
    expect(ofType(ann.socket, 'presence.diff')).toEqual([diff]);
    expect(ofType(ben.socket, 'presence.diff')).toEqual([diff]);
    await flush(batches); // nothing changed: nothing sent
    expect(ofType(ann.socket, 'presence.diff')).toHaveLength(1);
  });

  it('sends a sanitized room.message to every member, sender included', async () => {
    const cat = kit.connect('cat');
    const dan = kit.connect('dan');
    await join(cat.connection, 'desk');
    await join(dan.connection, 'desk');
    await rooms.message(dan.connection, 'desk', 'hi\u202E there');
    for (const socket of [cat.socket, dan.socket]) {
      const message = socket.frames().find((frame) => frame.type === 'room.message');
      expect(message?.data).toMatchObject({ room: 'desk', text: 'hi there', from: { id: 'dan' } });
    }
  });

  it('refuses what the rules forbid, with the error code a client can act on', async () => {
    const eve = kit.connect('eve', { rooms: ['team-1:*'] });
    const refusal = (work: Promise<unknown>) =>
      work.then(
        () => 'accepted',
        (error: unknown) => (error instanceof ClientError ? error.code : String(error)),
      );
    expect(await refusal(join(eve.connection, 'user:eve'))).toBe(ErrorCode.Forbidden);
    expect(await refusal(join(eve.connection, 'team-2:x'))).toBe(ErrorCode.Forbidden);
    expect(await refusal(rooms.message(eve.connection, 'team-1:x', 'hi'))).toBe(
      ErrorCode.NotMember,
    );
    expect(await refusal(join(eve.connection, 'team-1:x'))).toBe('accepted');
    expect(await refusal(rooms.message(eve.connection, 'team-1:x', '\u0000'))).toBe(
      ErrorCode.ValidationFailed,
    );
  });

  it('holds at most 50 rooms per connection', async () => {
    const fay = kit.connect('fay');
    for (let i = 0; i < 50; i++) {
      await join(fay.connection, `many-${i}`);
    }
    await expect(join(fay.connection, 'many-50')).rejects.toMatchObject({
      code: ErrorCode.Forbidden,
    });
  });

  it('batches typing: one notice per batch naming who typed, at most once per user per 2 s', async () => {
    const gus = kit.connect('gus');
    const hal = kit.connect('hal');
    await join(gus.connection, 'quiet');
    await join(hal.connection, 'quiet');
    await flush(batches);
    rooms.typing(gus.connection, 'quiet');
    rooms.typing(gus.connection, 'quiet');
    rooms.typing(hal.connection, 'quiet');
    await flush(batches);
    const notice = {
      room: 'quiet',
      users: [
        { id: 'gus', name: 'gus' },
        { id: 'hal', name: 'hal' },
      ],
    };
    expect(ofType(hal.socket, 'typing')).toEqual([notice]);
    expect(ofType(gus.socket, 'typing')).toEqual([notice]);
    rooms.typing(gus.connection, 'quiet'); // within 2 s of the last: dropped
    await flush(batches);
    expect(ofType(hal.socket, 'typing')).toHaveLength(1);
  });

  it('leaves every room of a closed socket, and the others hear it once', async () => {
    const ivy = kit.connect('ivy');
    const jon = kit.connect('jon');
    await join(ivy.connection, 'exit');
    await join(jon.connection, 'exit');
    await flush(batches);
    ivy.socket.close(1000, 'bye');
    await rooms.leaveAll(ivy.connection);
    await rooms.leaveAll(ivy.connection);
    await flush(batches);
    expect(ofType(jon.socket, 'presence.diff').at(-1)).toEqual({
      room: 'exit',
      joined: [],
      left: ['ivy'],
      count: 1,
    });
    expect(kit.hub.ofRoom('exit').size).toBe(1);
  });

  it('tells a user who came and went within one batch as gone', async () => {
    const kay = kit.connect('kay');
    const lou = kit.connect('lou');
    await join(kay.connection, 'brief');
    await flush(batches);
    await join(lou.connection, 'brief');
    await rooms.leave(lou.connection, 'brief');
    await flush(batches);
    expect(ofType(kay.socket, 'presence.diff').at(-1)).toEqual({
      room: 'brief',
      joined: [],
      left: ['lou'],
      count: 1,
    });
  });

  it('pages the members with a cursor', async () => {
    const ids = ['m1', 'm2', 'm3', 'm4', 'm5'];
    const members = ids.map((id) => kit.connect(id));
    for (const { connection } of members) {
      await join(connection, 'paged');
    }
    const first = await rooms.members(members[0].connection, 'paged', 2);
    expect(first).toEqual({
      room: 'paged',
      members: [
        { id: 'm1', name: 'm1' },
        { id: 'm2', name: 'm2' },
      ],
      count: 5,
      next: 'm2',
    });
    const rest = await rooms.members(members[0].connection, 'paged', 10, first.next);
    expect(rest.members.map((m) => m.id)).toEqual(['m3', 'm4', 'm5']);
    expect(rest.next).toBeUndefined();
  });

  it('does not let a closed socket into a room', async () => {
    const kim = kit.connect('kim');
    kim.socket.close(1000, 'gone');
    await expect(join(kim.connection, 'late')).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(kit.hub.ofRoom('late').size).toBe(0);
  });
});

describe('RoomsService above PRESENCE_DIFF_MAX_MEMBERS', () => {
  const { kit, rooms, batches, join } = roomsSuite({
    PRESENCE_BATCH_MS: '10',
    PRESENCE_DIFF_MAX_MEMBERS: '2',
  });

  it('sends diffs up to the limit, counts above it, and no typing above it', async () => {
    const [ann, ben, cat] = ['ann', 'ben', 'cat'].map((id) => kit.connect(id));
    for (const { connection } of [ann, ben]) {
      await join(connection, 'hall');
    }
    await flush(batches);
    expect(ofType(ann.socket, 'presence.diff')).toHaveLength(1);
    await join(cat.connection, 'hall');
    rooms.typing(ann.connection, 'hall');
    await flush(batches);
    expect(ofType(ann.socket, 'presence.count')).toEqual([{ room: 'hall', count: 3 }]);
    expect(ofType(ann.socket, 'presence.diff')).toHaveLength(1);
    expect(ofType(ann.socket, 'typing')).toEqual([]);
    await rooms.leave(cat.connection, 'hall'); // back to two: diffs again
    await flush(batches);
    expect(ofType(ann.socket, 'presence.diff').at(-1)).toEqual({
      room: 'hall',
      joined: [],
      left: ['cat'],
      count: 2,
    });
  });
});

describe('RoomsService: presence frames of a room, paced', () => {
  const BATCH_MS = 100;
  const { kit, batches, join } = roomsSuite({ PRESENCE_BATCH_MS: String(BATCH_MS) });

  it('leave at least one batch apart, by their ts too; those that wait fold into one', async () => {
    const ann = kit.connect('ann');
    const newcomers = ['ben', 'cat', 'dan'].map((id) => kit.connect(id));
    await join(ann.connection, 'paced');
    // Three batches told back to back (as when the store answers a late batch and the next ones
    // quickly): the first frame leaves at once; the next two wait their turn as one.
    for (const newcomer of newcomers) {
      await join(newcomer.connection, 'paced');
      await batches.flush();
    }
    const diffs = () =>
      (ann.socket.frames() as Array<{ type: string; ts: number; data: unknown }>).filter(
        (frame) => frame.type === 'presence.diff',
      );
    expect(diffs()).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 2 * BATCH_MS));
    const [first, second] = diffs();
    expect(diffs()).toHaveLength(2);
    expect(second.ts - first.ts).toBeGreaterThanOrEqual(BATCH_MS);
    expect(first.data).toMatchObject({ joined: [{ id: 'ann' }, { id: 'ben' }], count: 2 });
    expect(second.data).toEqual({
      room: 'paced',
      joined: [
        { id: 'cat', name: 'cat' },
        { id: 'dan', name: 'dan' },
      ],
      left: [],
      count: 4,
    });
  });
});

describe('foldDiffs', () => {
  const user = (id: string) => ({ id, name: id.toUpperCase() });
  const diff = (joined: string[], left: string[], count: number) => ({
    room: 'r',
    joined: joined.map(user),
    left,
    count,
  });

  it('tells in one diff what two told, as a client applies them', () => {
    // ann joins then leaves; bob leaves then comes back; cat joins in both (renamed); dan leaves.
    const earlier = diff(['ann', 'cat'], ['bob', 'dan'], 5);
    const later = {
      ...diff(['bob'], ['ann'], 4),
      joined: [user('bob'), { id: 'cat', name: 'Cat 2' }],
    };
    expect(foldDiffs(earlier, later)).toEqual({
      room: 'r',
      joined: [user('bob'), { id: 'cat', name: 'Cat 2' }],
      left: ['dan', 'ann'],
      count: 4,
    });
  });
});
