import { ErrorCode } from '@switchboard/protocol';
import { unitKit } from '../../../../../test/support/unit-kit';
import { ConnectionClosedError } from '../../core/connection';
import { ClientError } from '../messages/client-error';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { ClaimsRoomPolicy } from './room-policy';
import { RoomsService } from './rooms.service';

/** A RoomsService on the kit's core, with in-memory presence and the default room policy. */
const roomsOn = (kit: ReturnType<typeof unitKit>): RoomsService =>
  new RoomsService(
    kit.hub,
    kit.node,
    kit.streams,
    kit.instance,
    new ClaimsRoomPolicy(),
    new MemoryPresenceStore(),
    kit.lease,
    kit.limiter,
    kit.config,
  );

describe('RoomsService', () => {
  const kit = unitKit();
  const rooms = roomsOn(kit);
  beforeAll(() => kit.init());
  afterAll(() => {
    rooms.onApplicationShutdown();
    kit.dispose();
  });
  /** Joins as the router does: the reply, then what follows it. */
  const join = async (...args: Parameters<RoomsService['join']>) => {
    const { data, after } = await rooms.join(...args);
    after?.();
    return data;
  };
  const types = (socket: { frames(): Array<{ type: string }> }) =>
    socket.frames().map((frame) => frame.type);

  it('joins, announces the newcomer to the others, and lists everyone', async () => {
    const ann = kit.connect('ann');
    const ben = kit.connect('ben');
    expect(await join(ann.connection, 'lobby')).toEqual({
      room: 'lobby',
      members: [{ id: 'ann', name: 'ann' }],
      count: 1,
      position: { epoch: expect.any(String) as string, offset: 0 },
    });
    expect((await join(ben.connection, 'lobby')).count).toBe(2);
    expect(ann.socket.frames()).toEqual([
      expect.objectContaining({
        type: 'presence.joined',
        data: { room: 'lobby', user: { id: 'ben', name: 'ben' } },
      }),
    ]);
    expect(types(ben.socket)).toEqual([]);
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

  it('throttles typing to one per user per room per 2 s, and never echoes it', async () => {
    const gus = kit.connect('gus');
    const hal = kit.connect('hal');
    await join(gus.connection, 'quiet');
    await join(hal.connection, 'quiet');
    await rooms.typing(gus.connection, 'quiet');
    await rooms.typing(gus.connection, 'quiet');
    expect(types(hal.socket).filter((type) => type === 'room.typing')).toHaveLength(1);
    expect(types(gus.socket)).not.toContain('room.typing');
  });

  it('leaves every room of a closed socket and tells the others, once', async () => {
    const ivy = kit.connect('ivy');
    const jon = kit.connect('jon');
    await join(ivy.connection, 'exit');
    await join(jon.connection, 'exit');
    ivy.socket.close(1000, 'bye');
    await rooms.leaveAll(ivy.connection);
    await rooms.leaveAll(ivy.connection);
    expect(types(jon.socket).filter((type) => type === 'presence.left')).toEqual(['presence.left']);
    expect(kit.hub.ofRoom('exit').size).toBe(1);
  });

  it('does not let a closed socket into a room', async () => {
    const kim = kit.connect('kim');
    kim.socket.close(1000, 'gone');
    await expect(join(kim.connection, 'late')).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(kit.hub.ofRoom('late').size).toBe(0);
  });
});

describe('RoomsService with PRESENCE_EVENTS_MAX_MEMBERS', () => {
  const kit = unitKit({ PRESENCE_EVENTS_MAX_MEMBERS: '2' });
  const rooms = roomsOn(kit);
  beforeAll(() => kit.init());
  afterAll(() => {
    rooms.onApplicationShutdown();
    kit.dispose();
  });
  const notices = (socket: { frames(): Array<{ type: string; data?: unknown }> }) =>
    socket
      .frames()
      .filter((frame) => frame.type.startsWith('presence.'))
      .map((frame) => `${frame.type} ${(frame.data as { user: { id: string } }).user.id}`);

  it('announces joins and leaves in rooms up to the limit only, and still counts everyone', async () => {
    const [ann, ben, cat] = ['ann', 'ben', 'cat'].map((id) => kit.connect(id));
    for (const { connection } of [ann, ben, cat]) {
      const { after } = await rooms.join(connection, 'hall');
      after?.();
    }
    // ben made two members: announced; cat made three: not.
    expect(notices(ann.socket)).toEqual(['presence.joined ben']);
    expect((await rooms.members(ann.connection, 'hall')).count).toBe(3);
    await rooms.leave(cat.connection, 'hall'); // from three: not announced
    await rooms.leave(ben.connection, 'hall'); // from two: announced
    expect(notices(ann.socket)).toEqual(['presence.joined ben', 'presence.left ben']);
  });
});
