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
  MAX_LISTED_MEMBERS,
  type PresenceListData,
  type RoomHistoryData,
  type RoomJoinedData,
  type RoomMessageData,
  ServerMessageType,
  type StreamPosition,
  type UserInfo,
} from '@switchboard/protocol';
import { Node, roomChannel } from '../../core/node';
import { sanitizeText } from '../../common/sanitize';
import { Instance } from '../../config/instance';
import { inBatches } from '../../common/batches';
import { ExpiringMap } from '../../common/expiring-map';
import { Lease } from '../../redis/lease';
import type { Connection } from '../../core/connection';
import { roomFrame } from '../../core/frames';
import { type Catchup, Streams } from '../../core/streams';
import { Hub } from '../../core/hub';
import { ClientError } from '../messages/client-error';
import { MAX_TEXT_LENGTH } from '../messages/client-messages.dto';
import { PresenceBatches } from '../presence/presence-batches';
import { type PresenceMember, PresenceStore } from '../presence/presence-store.interface';
import { globMatches, RoomPolicy } from './room-policy';

export const MAX_ROOMS_PER_CONNECTION = 50;

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
 * bus: an instance subscribes to a room while a local socket is in it. Who came, who went and who
 * types reach the members in batches (`PresenceBatches`).
 */
@Injectable()
export class RoomsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RoomsService.name);
  private readonly typingSeen = new ExpiringMap<string, true>();
  /** Presence entries of closed sockets that could not be removed (Redis was out of reach). */
  private readonly unremoved = new Map<string, { room: string; member: PresenceMember }>();

  constructor(
    private readonly hub: Hub,
    private readonly bus: Node,
    private readonly streams: Streams,
    private readonly instance: Instance,
    private readonly policy: RoomPolicy,
    @Inject(PresenceStore) private readonly presence: PresenceStore,
    private readonly batches: PresenceBatches,
    private readonly lease: Lease,
  ) {}

  onModuleInit(): void {
    this.lease.onResync(() => this.writeBack());
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
      const { members, count } = await this.presence.page(room, MAX_LISTED_MEMBERS);
      const position = this.streams.enabled
        ? { position: await this.streams.position(roomChannel(room)) }
        : {};
      return { data: { room, members, count, ...position } };
    }
    if (connection.rooms.size >= MAX_ROOMS_PER_CONNECTION) {
      throw new ClientError(
        ErrorCode.Forbidden,
        `at most ${MAX_ROOMS_PER_CONNECTION} rooms per connection`,
      );
    }
    // Anonymous visitors are held to ANONYMOUS_ROOMS (their session's `rooms`) whatever the
    // room policy says.
    const { session } = connection;
    if (
      session.anonymous === true &&
      !(session.rooms ?? []).some((glob) => globMatches(glob, room))
    ) {
      throw new ClientError(ErrorCode.Forbidden, `anonymous visitors may not join "${room}"`);
    }
    if (!(await this.policy.canJoin(connection.session, room))) {
      throw new ClientError(ErrorCode.Forbidden, `not allowed to join "${room}"`);
    }
    // The policy may have awaited: a socket that closed meanwhile must not enter the room index.
    connection.assertOpen();
    let members: UserInfo[];
    let catchup: Catchup | undefined;
    let joined: { fresh: boolean; count: number };
    try {
      catchup = await this.streams.enter(
        connection,
        { channel: roomChannel(room), index: () => this.hub.join(connection, room) },
        since,
      );
      joined = await this.presence.join(room, this.member(connection));
    } catch (error) {
      await this.leaveLocally(connection, room);
      throw error;
    }
    try {
      ({ members } = await this.batches.firstPage(room, joined.count));
    } catch (error) {
      await this.leaveOrRemember(connection, room); // listed as present: undone
      throw error;
    }
    this.batches.counted(room, joined.count);
    if (joined.fresh) {
      this.batches.changed(room, connection.userId);
    }
    const data = { room, members, count: joined.count, ...catchup?.recovery };
    return { data, after: catchup?.finish };
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
    this.batches.counted(room, count);
    if (gone) {
      this.batches.changed(room, connection.userId);
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
   * At most one per user per room per 2 s from this instance (extras are dropped silently); the
   * members hear who typed in the next batch's `typing`.
   */
  typing(connection: Connection, room: string): void {
    this.assertMember(connection, room);
    // Room names cannot hold "|": the key is unambiguous whatever the user id holds.
    const key = `${room}|${connection.userId}`;
    if (this.typingSeen.has(key)) {
      return;
    }
    this.typingSeen.set(key, true, TYPING_INTERVAL_MS);
    this.batches.typed(room, this.user(connection));
  }

  /** `presence.list`: one page of the room's members in id order, after the member `after`. */
  async members(
    connection: Connection,
    room: string,
    limit: number,
    after?: string,
  ): Promise<PresenceListData> {
    this.assertMember(connection, room);
    return { room, ...(await this.presence.page(room, limit, after)) };
  }

  /**
   * Takes a closed (or closing) connection out of all its rooms, announcing who left. The gateway
   * calls it once the socket's message queue is idle, so a join that finished after the close is
   * undone here too. Entries that cannot be removed now are removed when Redis is back.
   */
  async leaveAll(connection: Connection): Promise<void> {
    for (const room of [...connection.rooms]) {
      await this.leaveOrRemember(connection, room);
    }
  }

  /** Leaves the room; a presence entry that cannot be removed now is removed when Redis is back. */
  private async leaveOrRemember(connection: Connection, room: string): Promise<void> {
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

  /** Whether presence entries of closed sockets wait for Redis to come back. */
  get hasUnremoved(): boolean {
    return this.unremoved.size > 0;
  }

  /**
   * Writes this instance's presence back after Redis lost it (or after another instance purged
   * this one). Each member written back afresh is told in the next batch, with the room's count
   * as the write-back of every instance makes it again.
   */
  private async writeBack(): Promise<void> {
    const memberships = [...this.hub.all()].flatMap((connection) =>
      [...connection.rooms].map((room) => ({ connection, room })),
    );
    await inBatches(memberships, WRITE_BACK_CONCURRENCY, async ({ connection, room }) => {
      const member = this.member(connection);
      const { fresh } = await this.presence.join(room, member);
      if (!connection.open) {
        await this.presence.leave(room, member); // closed meanwhile: its leaveAll came first
        return;
      }
      if (fresh) {
        this.batches.changed(room, connection.userId);
      }
    });
    this.unremoved.clear(); // a write-back leaves no entry of a closed socket behind
  }

  /** Removes a dead instance's members; the rooms hear who left in the next batch. */
  private async purge(instanceId: string): Promise<void> {
    for (const { room, user } of await this.presence.purgeInstance(instanceId)) {
      this.batches.changed(room, user.id);
    }
  }

  private async removeUnremoved(): Promise<void> {
    for (const [key, { room, member }] of [...this.unremoved]) {
      try {
        const { gone } = await this.presence.leave(room, member);
        if (gone) {
          this.batches.changed(room, member.userId);
        }
        this.unremoved.delete(key);
      } catch (error) {
        this.logger.warn({ msg: 'presence clean-up retry failed', room, err: error });
        return;
      }
    }
  }

  onApplicationShutdown(): void {
    this.typingSeen.dispose();
  }

  private async leaveLocally(connection: Connection, room: string): Promise<void> {
    connection.forget(roomChannel(room));
    if (this.hub.leave(connection, room)) {
      this.batches.forget(room);
      await this.bus.unsubscribeRoom(room);
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
