import {
  ClientMessageType,
  CloseCode,
  type ClientMessage,
  ServerMessageType,
  type TypingData,
  type UserInfo,
  type WelcomeData,
} from '@switchboard/protocol';
import { SwitchboardClient } from './switchboard-client';
import type { PresenceChange, WebSocketLike } from './types';

/** A WebSocket the test drives: it records what the client sends and delivers server frames. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  readonly sent: ClientMessage[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientMessage);
  }
  close(): void {}

  welcome(user: UserInfo): void {
    this.readyState = 1;
    this.onopen?.({});
    const data: Partial<WelcomeData> = { user, heartbeatMs: 3_600_000 };
    this.deliver(ServerMessageType.Welcome, data);
  }
  deliver(type: string, data: unknown, id?: string): void {
    this.onmessage?.({ data: JSON.stringify({ type, id, data, ts: 0 }) });
  }
  /** Answers the last request of `type` the client sent on this socket. */
  reply(type: string, data: unknown): void {
    const request = this.sent.filter((message) => message.type === type).pop();
    if (request?.id === undefined) {
      throw new Error(`no ${type} request was sent`);
    }
    this.deliver(
      type === ClientMessageType.RoomJoin ? ServerMessageType.RoomJoined : type,
      data,
      request.id,
    );
  }
  drop(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

const alice = { id: 'alice', name: 'Alice' };
const bob = { id: 'bob', name: 'Bob' };
const carol = { id: 'carol', name: 'Carol' };
const dave = { id: 'dave', name: 'Dave' };

const ticket = (n: number) =>
  new Response(
    JSON.stringify({ ticket: `t${n}`, expiresIn: 30, url: `ws://rt.test/ws?ticket=t${n}` }),
    {
      status: 201,
    },
  );

/** Presence and typing as the client keeps them, from the frames of a fake server. */
describe('SwitchboardClient presence', () => {
  let client: SwitchboardClient;
  let changes: PresenceChange[];
  let typing: TypingData[];

  beforeEach(async () => {
    jest.useFakeTimers();
    FakeSocket.all = [];
    let tickets = 0;
    client = new SwitchboardClient({
      url: 'http://rt.test',
      getAccessToken: () => 'token',
      WebSocket: FakeSocket,
      fetch: () => Promise.resolve(ticket(++tickets)),
      backoff: { random: () => 0 },
    });
    changes = [];
    typing = [];
    client.on('presence', (change) => changes.push(change));
    client.on('typing', (notice) => typing.push(notice));
    client.connect();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.last.welcome(alice);
  });
  afterEach(() => {
    client.close();
    jest.useRealTimers();
  });

  /** Joins `room`, the server answering with `members` and `count`. */
  async function join(room: string, members: UserInfo[], count = members.length): Promise<void> {
    const joined = client.join(room);
    FakeSocket.last.reply(ClientMessageType.RoomJoin, { room, members, count });
    await joined;
  }

  it('starts from the room.joined snapshot, then applies each diff and count', async () => {
    await join('lobby', [alice, carol]);
    expect(client.members('lobby')).toEqual([alice, carol]);
    expect(client.count('lobby')).toBe(2);
    expect(changes).toEqual([
      { room: 'lobby', members: [alice, carol], count: 2, snapshot: true, joined: [], left: [] },
    ]);

    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'lobby',
      joined: [bob],
      left: ['carol'],
      count: 2,
    });
    expect(client.members('lobby')).toEqual([alice, bob]);
    expect(changes[1]).toEqual({
      room: 'lobby',
      members: [alice, bob],
      count: 2,
      snapshot: false,
      joined: [bob],
      left: ['carol'],
    });

    // Idempotent: a diff may name users already present (the client's own too) or never listed.
    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'lobby',
      joined: [alice, { id: 'bob', name: 'Bob B.' }, dave],
      left: ['nobody'],
      count: 3,
    });
    expect(client.members('lobby')).toEqual([alice, { id: 'bob', name: 'Bob B.' }, dave]);
    expect(client.count('lobby')).toBe(3);

    FakeSocket.last.deliver(ServerMessageType.PresenceCount, { room: 'lobby', count: 7_000 });
    expect(client.count('lobby')).toBe(7_000);
    expect(client.members('lobby')).toHaveLength(3);
    expect(changes[3]).toMatchObject({ count: 7_000, snapshot: false, joined: [], left: [] });
    expect(changes).toHaveLength(4);
  });

  it('ignores presence frames for a room until its room.joined reply arrives', async () => {
    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'elsewhere',
      joined: [bob],
      left: [],
      count: 1,
    });
    const joined = client.join('lobby');
    // The server added the user and told the room's batch before answering the join.
    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'lobby',
      joined: [alice, dave],
      left: [],
      count: 3,
    });
    FakeSocket.last.deliver(ServerMessageType.PresenceCount, { room: 'lobby', count: 9 });
    expect(client.count('lobby')).toBeUndefined();
    FakeSocket.last.reply(ClientMessageType.RoomJoin, {
      room: 'lobby',
      members: [alice, bob],
      count: 2,
    });
    await joined;
    expect(client.members('lobby')).toEqual([alice, bob]);
    expect(client.count('lobby')).toBe(2);
    expect(client.members('elsewhere')).toEqual([]);
    expect(client.count('elsewhere')).toBeUndefined();
    expect(changes.map((change) => change.snapshot)).toEqual([true]);
  });

  it('replaces what it knew with the snapshot of the rejoin after a reconnect', async () => {
    await join('lobby', [alice, bob]);
    FakeSocket.last.drop(CloseCode.Abnormal);
    // While away: what it last knew, and nothing from the old socket.
    expect(client.members('lobby')).toEqual([alice, bob]);
    await jest.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last.welcome(alice);
    const rejoin = FakeSocket.last.sent.find((m) => m.type === ClientMessageType.RoomJoin);
    expect(rejoin?.data).toEqual({ room: 'lobby' });
    // A diff on the new socket before the rejoin's reply is older than the reply's snapshot.
    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'lobby',
      joined: [dave],
      left: [],
      count: 3,
    });
    expect(client.members('lobby')).toEqual([alice, bob]);
    expect(changes).toHaveLength(1);

    // Bob went while the client was away, Carol came: the snapshot says so, whole.
    FakeSocket.last.reply(ClientMessageType.RoomJoin, {
      room: 'lobby',
      members: [alice, carol],
      count: 2,
    });
    await jest.advanceTimersByTimeAsync(0);
    expect(client.members('lobby')).toEqual([alice, carol]);
    expect(client.count('lobby')).toBe(2);
    expect(changes[1]).toEqual({
      room: 'lobby',
      members: [alice, carol],
      count: 2,
      snapshot: true,
      joined: [],
      left: [],
    });
    // Live again: diffs apply.
    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'lobby',
      joined: [bob],
      left: [],
      count: 3,
    });
    expect(client.members('lobby')).toEqual([alice, bob, carol]);
  });

  it('forgets a room’s presence when it leaves the room', async () => {
    await join('lobby', [alice, bob]);
    const left = client.leave('lobby');
    expect(client.members('lobby')).toEqual([]);
    expect(client.count('lobby')).toBeUndefined();
    FakeSocket.last.reply(ClientMessageType.RoomLeave, { room: 'lobby' });
    await left;
    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'lobby',
      joined: [carol],
      left: ['bob'],
      count: 2,
    });
    FakeSocket.last.deliver(ServerMessageType.Typing, { room: 'lobby', users: [bob] });
    expect(client.members('lobby')).toEqual([]);
    expect(changes).toHaveLength(1);
    expect(typing).toEqual([]);
  });

  it('keeps the presence of a room the host application joined the socket to, until it leaves', () => {
    FakeSocket.last.deliver(ServerMessageType.RoomJoined, {
      room: 'support',
      members: [alice],
      count: 1,
    });
    FakeSocket.last.deliver(ServerMessageType.PresenceDiff, {
      room: 'support',
      joined: [bob],
      left: [],
      count: 2,
    });
    expect(client.members('support')).toEqual([alice, bob]);
    FakeSocket.last.deliver(ServerMessageType.RoomLeft, { room: 'support' });
    expect(client.count('support')).toBeUndefined();

    // Not the client's to rejoin: a dropped socket forgets it (the host may join it again).
    FakeSocket.last.deliver(ServerMessageType.RoomJoined, {
      room: 'support',
      members: [],
      count: 0,
    });
    FakeSocket.last.drop(CloseCode.Abnormal);
    expect(client.count('support')).toBeUndefined();
  });

  it('reports who is typing in a joined room, its own user left out', async () => {
    await join('lobby', [alice, bob, carol]);
    FakeSocket.last.deliver(ServerMessageType.Typing, {
      room: 'lobby',
      users: [alice, bob, carol],
    });
    FakeSocket.last.deliver(ServerMessageType.Typing, { room: 'lobby', users: [alice] });
    FakeSocket.last.deliver(ServerMessageType.Typing, { room: 'elsewhere', users: [bob] });
    expect(typing).toEqual([{ room: 'lobby', users: [bob, carol] }]);

    expect(client.typing('lobby')).toBe(true);
    expect(FakeSocket.last.sent.pop()).toEqual({
      type: ClientMessageType.Typing,
      data: { room: 'lobby' },
    });
  });

  it('pages through a room’s members with presence.list', async () => {
    await join('big', [alice, bob], 250);
    const page = client.presence('big', { after: 'bob', limit: 2 });
    expect(FakeSocket.last.sent[FakeSocket.last.sent.length - 1]).toMatchObject({
      type: ClientMessageType.PresenceList,
      data: { room: 'big', after: 'bob', limit: 2 },
    });
    FakeSocket.last.reply(ClientMessageType.PresenceList, {
      room: 'big',
      members: [carol, dave],
      count: 250,
      next: 'dave',
    });
    await expect(page).resolves.toEqual({
      room: 'big',
      members: [carol, dave],
      count: 250,
      next: 'dave',
    });
    // A page is the caller's: the members the client keeps are the snapshot's and the diffs'.
    expect(client.members('big')).toEqual([alice, bob]);

    const first = client.presence('big');
    expect(FakeSocket.last.sent[FakeSocket.last.sent.length - 1].data).toEqual({ room: 'big' });
    FakeSocket.last.reply(ClientMessageType.PresenceList, { room: 'big', members: [], count: 250 });
    await first;
  });
});
