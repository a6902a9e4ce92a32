import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  ErrorCode,
  type RoomHistoryData,
  type RoomJoinedData,
  type RoomMembersData,
  type RoomMessageData,
  type RoomUserData,
  ServerMessageType,
  type StreamPosition,
  type UserInfo,
} from '@switchboard/protocol';
import { Node, roomChannel } from '../../core/node';
import { sanitizeText } from '../../common/sanitize';
import { Instance } from '../../config/instance';
import { AppConfig } from '../../config/app-config';
import { inBatches } from '../../common/batches';
import { ExpiringMap } from '../../common/expiring-map';
import { RateLimiter } from '../../rate-limit/rate-limiter.interface';
import { Lease } from '../../redis/lease';
import type { Connection } from '../../core/connection';
import { roomFrame, serverFrame } from '../../core/frames';
import { type Catchup, Streams } from '../../core/streams';
import { Hub } from '../../core/hub';
import { ClientError } from '../messages/client-error';
import { MAX_TEXT_LENGTH } from '../messages/client-messages.dto';
import { type PresenceMember, PresenceStore } from '../presence/presence-store.interface';
import { RoomPolicy } from './room-policy';

export const MAX_ROOMS_PER_CONNECTION = 50;

/** Member lists (`room.joined`, `presence.list`) name at most this many users; `count` has them all. */
export const MAX_LISTED_MEMBERS = 100;
/**
 * Reserved: a user's own events (`BroadcastService.toUser`) travel on the user's stream, not in a
 * room, and no room may look like one.
 */
const RESERVED_ROOM_PREFIX = 'user:';
const TYPING_INTERVAL_MS = 2_000;
/** Presence entries written back at once after Redis lost them. */
const WRITE_BACK_CONCURRENCY = 200;

/**
 * Rooms, presence and typing for one connection's requests. Room traffic crosses instances on the
 * bus: an instance subscribes to a room while a local socket is in it.
 */
@Injectable()
export class RoomsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RoomsService.name);
  private readonly typingSeen = new ExpiringMap<string, true>();
  /** Presence entries of closed sockets that could not be removed (Redis was out of reach). */
  private readonly unremoved = new Map<string, { room: string; member: PresenceMember }>();
  /** `PRESENCE_EVENTS_MAX_MEMBERS`: larger rooms get no join and leave notices. */
  private readonly presenceEventsMaxMembers: number;

  constructor(
    private readonly hub: Hub,
    private readonly bus: Node,
    private readonly streams: Streams,
    private readonly instance: Instance,
    private readonly policy: RoomPolicy,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    private readonly lease: Lease,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    config: AppConfig,
  ) {
    this.presenceEventsMaxMembers = config.limits.presenceEventsMaxMembers;
  }

  onModuleInit(): void {
    this.lease.onResync(({ announce }) => this.writeBack(announce));
    this.lease.onPurge((instanceId) => this.purge(instanceId));
    this.lease.onRecovered(() => void this.removeUnremoved());
  }

  /**
   * Joins the room and, with streams on, reads where its stream stands; with `since`, what the
   * client missed. The caller sends the `room.joined` reply, then calls `after`: the missed
   * publications follow the reply, before any newer one.
   */
  async join(
    connection: Connection,
    room: string,
    since?: StreamPosition,
  ): Promise<{ data: RoomJoinedData; after?: () => void }> {
    if (room.startsWith(RESERVED_ROOM_PREFIX)) {
      throw new ClientError(ErrorCode.Forbidden, `"${RESERVED_ROOM_PREFIX}" rooms are reserved`);
    }
    if (connection.rooms.has(room)) {
      // Already in: its publications reach the socket, nothing to recover; the reply still says
      // where the stream stands, as every `room.joined` does.
      const listed = await this.presence.members(room, MAX_LISTED_MEMBERS);
      const position = this.streams.enabled
        ? { position: await this.streams.position(roomChannel(room)) }
        : {};
      return { data: { room, ...listed, ...position } };
    }
    if (connection.rooms.size >= MAX_ROOMS_PER_CONNECTION) {
      throw new ClientError(
        ErrorCode.Forbidden,
        `at most ${MAX_ROOMS_PER_CONNECTION} rooms per connection`,
      );
    }
    if (!(await this.policy.canJoin(connection.session, room))) {
      throw new ClientError(ErrorCode.Forbidden, `not allowed to join "${room}"`);
    }
    // The policy may have awaited: a socket that closed meanwhile must not enter the room index.
    connection.assertOpen();
    let fresh: boolean;
    let listed: { members: UserInfo[]; count: number };
    let catchup: Catchup | undefined;
    try {
      catchup = await this.streams.enter(
        connection,
        { channel: roomChannel(room), index: () => this.hub.join(connection, room) },
        since,
      );
      fresh = await this.presence.join(room, this.member(connection));
      listed = await this.presence.members(room, MAX_LISTED_MEMBERS);
    } catch (error) {
      await this.leaveLocally(connection, room);
      throw error;
    }
    if (fresh && this.announced(listed.count)) {
      await this.announce(room, ServerMessageType.PresenceJoined, connection);
    }
    return { data: { room, ...listed, ...catchup?.recovery }, after: catchup?.finish };
  }

  /** `room.history`: scrollback of the room's stream, for members. */
  async history(
    connection: Connection,
    room: string,
    limit: number,
    before?: number,
  ): Promise<RoomHistoryData> {
    this.assertMember(connection, room);
    if (!this.streams.enabled) {
      throw new ClientError(ErrorCode.Forbidden, 'history is off on this server (HISTORY_SIZE=0)');
    }
    return { room, ...(await this.streams.history(roomChannel(room), limit, before)) };
  }

  /**
   * Redis first: when the presence store cannot be reached the leave fails with nothing done (the
   * socket is still in the room and still listed), so `unavailable` means what it says.
   */
  async leave(connection: Connection, room: string): Promise<{ room: string }> {
    this.assertMember(connection, room);
    const { gone, count } = await this.presence.leave(room, this.member(connection));
    await this.leaveLocally(connection, room);
    if (gone && this.announced(count + 1)) {
      await this.announce(room, ServerMessageType.PresenceLeft, connection);
    }
    return { room };
  }

  async message(connection: Connection, room: string, text: string): Promise<void> {
    this.assertMember(connection, room);
    const clean = sanitizeText(text);
    if (clean.length === 0 || clean.length > MAX_TEXT_LENGTH) {
      throw new ClientError(
        ErrorCode.ValidationFailed,
        'text must be 1-4000 characters after removing control characters',
        {
          fields: {
            text: [
              `text must be 1-${MAX_TEXT_LENGTH} characters after removing control characters`,
            ],
          },
        },
      );
    }
    const data: RoomMessageData = {
      room,
      from: this.user(connection),
      text: clean,
      messageId: randomUUID(),
    };
    const frame = roomFrame(ServerMessageType.RoomMessage, data, room);
    await this.bus.publishToStreams([roomChannel(room)], frame);
  }

  /**
   * At most one per user per room per 2 s, cluster-wide (two tabs on two instances share the
   * allowance); extras are dropped silently. This instance's own memory answers repeats without
   * asking Redis.
   */
  async typing(connection: Connection, room: string): Promise<void> {
    this.assertMember(connection, room);
    // Room names cannot hold "|": the key is unambiguous whatever the user id holds.
    const key = `typing:${room}|${connection.userId}`;
    if (this.typingSeen.has(key)) {
      return;
    }
    this.typingSeen.set(key, true, TYPING_INTERVAL_MS);
    if (!(await this.limiter.hit(key, 1, TYPING_INTERVAL_MS)).allowed) {
      return;
    }
    const data: RoomUserData = { room, user: this.user(connection) };
    const frame = serverFrame(ServerMessageType.RoomTyping, data);
    await this.bus.publishEvents([roomChannel(room)], frame, connection.id);
  }

  async members(connection: Connection, room: string): Promise<RoomMembersData> {
    this.assertMember(connection, room);
    return { room, ...(await this.presence.members(room, MAX_LISTED_MEMBERS)) };
  }

  /**
   * Takes a closed (or closing) connection out of all its rooms, announcing who left. The gateway
   * calls it once the socket's message queue is idle, so a join that finished after the close is
   * undone here too. Entries that cannot be removed now are removed when Redis is back.
   */
  async leaveAll(connection: Connection): Promise<void> {
    for (const room of [...connection.rooms]) {
      try {
        await this.leave(connection, room);
      } catch (error) {
        await this.leaveLocally(connection, room);
        const member = this.member(connection);
        this.unremoved.set(`${room}\n${member.connectionId}`, { room, member });
        this.logger.warn({
          msg: 'presence not cleaned up yet; retried when Redis is back',
          connectionId: connection.id,
          room,
          err: error,
        });
      }
    }
  }

  /** Whether presence entries of closed sockets wait for Redis to come back. */
  get hasUnremoved(): boolean {
    return this.unremoved.size > 0;
  }

  /**
   * Writes this instance's presence back after Redis lost it (or after another instance purged
   * this one). Members announced as gone by the purge are announced again.
   */
  private async writeBack(announce: boolean): Promise<void> {
    const memberships = [...this.hub.all()].flatMap((connection) =>
      [...connection.rooms].map((room) => ({ connection, room })),
    );
    await inBatches(memberships, WRITE_BACK_CONCURRENCY, async ({ connection, room }) => {
      const member = this.member(connection);
      const fresh = await this.presence.join(room, member);
      if (!connection.open) {
        await this.presence.leave(room, member); // closed meanwhile: its leaveAll came first
        return;
      }
      if (fresh && announce && this.announced((await this.presence.members(room, 0)).count)) {
        await this.announce(room, ServerMessageType.PresenceJoined, connection);
      }
    });
    this.unremoved.clear(); // a write-back leaves no entry of a closed socket behind
  }

  /** Removes a dead instance's members, and tells each room who left (once, cluster-wide). */
  private async purge(instanceId: string): Promise<void> {
    for (const { room, user, count } of await this.presence.purgeInstance(instanceId)) {
      if (this.announced(count + 1)) {
        await this.publishLeft(room, user);
      }
    }
  }

  private async removeUnremoved(): Promise<void> {
    for (const [key, { room, member }] of [...this.unremoved]) {
      try {
        const { gone, count } = await this.presence.leave(room, member);
        if (gone && this.announced(count + 1)) {
          await this.publishLeft(room, { id: member.userId, name: member.name });
        }
        this.unremoved.delete(key);
      } catch (error) {
        this.logger.warn({ msg: 'presence clean-up retry failed', room, err: error });
        return;
      }
    }
  }

  private async publishLeft(room: string, user: UserInfo): Promise<void> {
    try {
      const data: RoomUserData = { room, user };
      const frame = serverFrame(ServerMessageType.PresenceLeft, data);
      await this.bus.publishEvents([roomChannel(room)], frame);
    } catch (error) {
      this.logger.warn({ msg: 'presence.left not announced', room, err: error });
    }
  }

  onApplicationShutdown(): void {
    this.typingSeen.dispose();
  }

  private async leaveLocally(connection: Connection, room: string): Promise<void> {
    connection.forget(roomChannel(room));
    if (this.hub.leave(connection, room)) {
      await this.bus.unsubscribeRoom(room);
    }
  }

  /**
   * Whether a room of `members` (the user who came or went counted in) hears joins and leaves:
   * each notice goes to every member, so n joins into one room cost n² frames. Larger rooms learn
   * their count from `presence.list` and `room.joined`.
   */
  private announced(members: number): boolean {
    return members <= this.presenceEventsMaxMembers;
  }

  /** Tells the room's other members (every other connection) that the user came or went. */
  private async announce(room: string, type: string, connection: Connection): Promise<void> {
    const data: RoomUserData = { room, user: this.user(connection) };
    const frame = serverFrame(type, data);
    try {
      await this.bus.publishEvents([roomChannel(room)], frame, connection.id);
    } catch (error) {
      this.logger.warn({ msg: 'presence change not announced', room, type, err: error });
    }
  }

  private assertMember(connection: Connection, room: string): void {
    if (!connection.rooms.has(room)) {
      throw new ClientError(ErrorCode.NotMember, `not a member of "${room}"`);
    }
  }

  private user(connection: Connection): UserInfo {
    return { id: connection.userId, name: connection.session.name };
  }

  private member(connection: Connection): PresenceMember {
    return {
      userId: connection.userId,
      name: connection.session.name,
      connectionId: connection.id,
      instanceId: this.instance.id,
    };
  }
}
