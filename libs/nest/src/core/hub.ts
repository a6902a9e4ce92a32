import { Injectable } from '@nestjs/common';
import type { TransportKind } from '@switchboard/protocol';
import type { Connection } from './connection';
import type { SessionKind } from '../metrics/metrics.service';

export type AdmissionRefusal = 'capacity' | 'ip_limit';

/** A place reserved for a handshake in progress; released once, when it ends either way. */
export interface Admission {
  readonly ip: string;
  release(): void;
}

/**
 * The sockets this instance holds, indexed by connection, user, session and room, and the per-instance
 * admission counters (`MAX_CONNECTIONS`, `MAX_CONNECTIONS_PER_IP`). Handshakes in progress count
 * against the limits, so a burst of concurrent upgrades cannot overshoot them.
 */
@Injectable()
export class Hub {
  private readonly byId = new Map<string, Connection>();
  // Arrays, not sets: nearly every user and session holds one socket, and a one-element array is
  // a fraction of an empty Set's size.
  private readonly byUser = new Map<string, Connection[]>();
  private readonly bySession = new Map<string, Connection[]>();
  private readonly byRoom = new Map<string, Set<Connection>>();
  private readonly perIp = new Map<string, number>();
  /** Held connections over Server-Sent Events (the rest are WebSockets). */
  private sse = 0;
  /** Held connections of anonymous visitors, by transport. */
  private readonly anonymous = { websocket: 0, sse: 0 };
  private pending = 0;
  private drainingSince: number | null = null;

  get size(): number {
    return this.byId.size;
  }

  /** Held connections of one transport, of signed-in users or anonymous visitors. */
  countOf(transport: TransportKind, kind: SessionKind): number {
    const all = transport === 'sse' ? this.sse : this.byId.size - this.sse;
    return kind === 'anonymous' ? this.anonymous[transport] : all - this.anonymous[transport];
  }

  get draining(): boolean {
    return this.drainingSince !== null;
  }

  startDraining(): void {
    this.drainingSince ??= Date.now();
  }

  /** Reserves a place for a handshake from `ip`, or says which limit refuses it. */
  reserve(ip: string, maxConnections: number, maxPerIp: number): Admission | AdmissionRefusal {
    if (this.byId.size + this.pending >= maxConnections) {
      return 'capacity';
    }
    const fromIp = this.perIp.get(ip) ?? 0;
    if (fromIp >= maxPerIp) {
      return 'ip_limit';
    }
    this.perIp.set(ip, fromIp + 1);
    this.pending += 1;
    let released = false;
    return {
      ip,
      release: () => {
        if (!released) {
          released = true;
          this.pending -= 1;
          this.decrementIp(ip);
        }
      },
    };
  }

  /** Turns a reservation into a held connection (its IP place carries over). */
  add(connection: Connection, admission: Admission): void {
    admission.release();
    this.perIp.set(connection.ip, (this.perIp.get(connection.ip) ?? 0) + 1);
    this.byId.set(connection.id, connection);
    this.sse += connection.transport === 'sse' ? 1 : 0;
    this.anonymous[connection.transport] += connection.session.anonymous === true ? 1 : 0;
    append(this.byUser, connection.userId, connection);
    append(this.bySession, connection.session.sessionId, connection);
  }

  remove(connection: Connection): boolean {
    if (!this.byId.delete(connection.id)) {
      return false;
    }
    this.decrementIp(connection.ip);
    this.sse -= connection.transport === 'sse' ? 1 : 0;
    this.anonymous[connection.transport] -= connection.session.anonymous === true ? 1 : 0;
    detach(this.byUser, connection.userId, connection);
    detach(this.bySession, connection.session.sessionId, connection);
    // Rooms stay until RoomsService.leaveAll, which also unsubscribes and updates presence.
    return true;
  }

  /** Moves the connection to its session's new id (after `session.refresh` with another `sid`). */
  rekey(connection: Connection, session: Connection['session']): void {
    detach(this.bySession, connection.session.sessionId, connection);
    connection.session = session;
    append(this.bySession, session.sessionId, connection);
  }

  /** Adds the connection to the room; true when it is the room's first local member. */
  join(connection: Connection, room: string): boolean {
    connection.addRoom(room);
    return addTo(this.byRoom, room, connection);
  }

  /** Removes the connection from the room; true when the room has no local member left. */
  leave(connection: Connection, room: string): boolean {
    connection.removeRoom(room);
    return removeFrom(this.byRoom, room, connection);
  }

  /** The rooms with local members. */
  rooms(): IterableIterator<string> {
    return this.byRoom.keys();
  }

  ofRoom(room: string): ReadonlySet<Connection> {
    return this.byRoom.get(room) ?? EMPTY;
  }

  get(connectionId: string): Connection | undefined {
    return this.byId.get(connectionId);
  }

  ofUser(userId: string): readonly Connection[] {
    return this.byUser.get(userId) ?? NONE;
  }

  ofSession(sessionId: string): readonly Connection[] {
    return this.bySession.get(sessionId) ?? NONE;
  }

  sessionIds(): string[] {
    return [...this.bySession.keys()];
  }

  all(): IterableIterator<Connection> {
    return this.byId.values();
  }

  private decrementIp(ip: string): void {
    const count = (this.perIp.get(ip) ?? 1) - 1;
    if (count <= 0) {
      this.perIp.delete(ip);
    } else {
      this.perIp.set(ip, count);
    }
  }
}

const EMPTY: ReadonlySet<Connection> = new Set();
const NONE: readonly Connection[] = [];

function append(index: Map<string, Connection[]>, key: string, connection: Connection): void {
  const list = index.get(key);
  if (list === undefined) {
    index.set(key, [connection]);
  } else {
    list.push(connection);
  }
}

function detach(index: Map<string, Connection[]>, key: string, connection: Connection): void {
  const list = index.get(key);
  const at = list?.indexOf(connection) ?? -1;
  if (list === undefined || at < 0) {
    return;
  }
  if (list.length === 1) {
    index.delete(key);
  } else {
    list.splice(at, 1);
  }
}

/** Returns true when the key is new. */
/** Returns true when the key is new. */
function addTo(index: Map<string, Set<Connection>>, key: string, connection: Connection): boolean {
  let set = index.get(key);
  const created = set === undefined;
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(connection);
  return created;
}

/** Returns true when the key is gone afterwards. */
function removeFrom(
  index: Map<string, Set<Connection>>,
  key: string,
  connection: Connection,
): boolean {
  const set = index.get(key);
  if (set === undefined) {
    return false;
  }
  set.delete(connection);
  if (set.size === 0) {
    index.delete(key);
    return true;
  }
  return false;
}
