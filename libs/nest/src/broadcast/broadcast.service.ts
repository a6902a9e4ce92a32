import { Injectable } from '@nestjs/common';
import { CloseCode, RESERVED_EVENT_PREFIXES } from '@switchboard/protocol';
import { type BroadcastTarget, MetricsService } from '../metrics/metrics.service';
import { roomFrame, serverFrame } from '../core/frames';
import { MAX_BROADCAST_USERS } from './broadcast.dto';
import { ALL_CHANNEL, Node, roomChannel, userChannel } from '../core/node';

const EVENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const MAX_REASON_BYTES = 123;

/** A broadcast call was given an event name, close code or target that cannot be sent. */
export class InvalidBroadcastError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBroadcastError';
  }
}

/**
 * Pushes events to users, rooms or everyone, and disconnects users or sessions, on every instance.
 * Inject it anywhere.
 *
 * Every call reaches every matching socket in the cluster at most once, in publish order per
 * publisher. The payload is serialized once per call and the frame is handed to Redis before this
 * instance's own sockets are served. Sockets receive `{ "type": event, "data": data, "ts": ms }`.
 *
 * `toUser`, `toUsers` and `toRoom` publish into streams (the user's, the room's): each frame also
 * carries its `"offset"` in that stream (and `"room"` for a room), is kept in history
 * (`HISTORY_SIZE`, `HISTORY_TTL_S`) and reaches a client that reconnects in time. `toAll` does not.
 *
 * While Redis is down (cluster mode) every call rejects with `BroadcastUnavailableError` and
 * nothing is sent; it works again by itself when Redis returns. Bad arguments reject with
 * `InvalidBroadcastError`.
 */
@Injectable()
export class BroadcastService {
  constructor(
    private readonly bus: Node,
    private readonly metrics: MetricsService,
  ) {}

  /** Sends to every socket of the user (the user's private channel). */
  async toUser(userId: string, event: string, data: unknown): Promise<void> {
    assertId(userId, 'userId');
    assertEvent(event);
    await this.send('user', [userChannel(userId)], serverFrame(event, data), true);
  }

  /**
   * Sends to every socket of each user; duplicates are sent once. At most `MAX_BROADCAST_USERS`
   * (1,000) users a call: split longer lists. Only users who connected lately have a stream that
   * keeps the event for recovery; the others are sent it live, and nothing is stored for them.
   */
  async toUsers(userIds: string[], event: string, data: unknown): Promise<void> {
    assertEvent(event);
    const unique = new Set(userIds);
    if (unique.size > MAX_BROADCAST_USERS) {
      throw new InvalidBroadcastError(
        `at most ${MAX_BROADCAST_USERS} users a call, got ${unique.size}: split the list`,
      );
    }
    const channels = [...unique].map((userId) => {
      assertId(userId, 'userId');
      return userChannel(userId);
    });
    await this.send('users', channels, serverFrame(event, data), true);
  }

  /** Sends to every member of the room, except `opts.exceptConnectionId` when given. */
  async toRoom(
    room: string,
    event: string,
    data: unknown,
    opts: { exceptConnectionId?: string } = {},
  ): Promise<void> {
    assertId(room, 'room');
    assertEvent(event);
    await this.send(
      'room',
      [roomChannel(room)],
      roomFrame(event, data, room),
      true,
      opts.exceptConnectionId,
    );
  }

  /** Sends to every socket of every instance. */
  async toAll(event: string, data: unknown): Promise<void> {
    assertEvent(event);
    await this.send('all', [ALL_CHANNEL], serverFrame(event, data), false);
  }

  /**
   * Closes every socket of the user.
   * @param code default `4003` (the client SDK stops and reports signed-out)
   */
  async disconnectUser(
    userId: string,
    code: number = CloseCode.SessionRevoked,
    reason = 'disconnected by the server',
  ): Promise<void> {
    assertId(userId, 'userId');
    await this.bus.close({ userId }, checkCode(code), clip(reason));
  }

  /**
   * Closes every socket of the session (what logout does, with `4003`).
   * @param code default `4003`
   */
  async disconnectSession(
    sessionId: string,
    code: number = CloseCode.SessionRevoked,
    reason = 'session revoked',
  ): Promise<void> {
    assertId(sessionId, 'sessionId');
    await this.bus.close({ sessionId }, checkCode(code), clip(reason));
  }

  private async send(
    target: BroadcastTarget,
    channels: string[],
    frame: string,
    stream: boolean,
    except?: string,
  ): Promise<void> {
    if (channels.length === 0) {
      return;
    }
    this.metrics.broadcast(target);
    await (stream
      ? this.bus.publishToStreams(channels, frame, except)
      : this.bus.publishEvents(channels, frame, except));
  }
}

function assertEvent(event: string): void {
  if (typeof event !== 'string' || !EVENT_NAME.test(event)) {
    throw new InvalidBroadcastError(
      'event must be 1-64 letters, digits, "_", ".", ":" or "-", starting with a letter or digit',
    );
  }
  if (RESERVED_EVENT_PREFIXES.some((prefix) => event.startsWith(prefix))) {
    throw new InvalidBroadcastError(
      `event "${event}" uses a reserved prefix (${RESERVED_EVENT_PREFIXES.join(', ')})`,
    );
  }
}

function assertId(value: string, name: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    throw new InvalidBroadcastError(`${name} must be a non-empty string of at most 256 characters`);
  }
}

/** Codes a server may send: 1000, 1001, 1008, 1011, and the application range 3000-4999. */
function checkCode(code: number): number {
  if (
    !Number.isInteger(code) ||
    !([1000, 1001, 1008, 1011].includes(code) || (code >= 3000 && code <= 4999))
  ) {
    throw new InvalidBroadcastError(
      `close code ${code} cannot be sent; use 1000, 1001, 1008, 1011 or 3000-4999`,
    );
  }
  return code;
}

function clip(reason: string): string {
  const buffer = Buffer.from(reason);
  return buffer.length <= MAX_REASON_BYTES
    ? reason
    : buffer
        .subarray(0, MAX_REASON_BYTES)
        .toString()
        .replace(/\uFFFD$/, '');
}
