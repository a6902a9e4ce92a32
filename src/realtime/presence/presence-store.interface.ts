import type { UserInfo } from '@app/protocol';

export interface PresenceMember {
  userId: string;
  name: string;
  connectionId: string;
  instanceId: string;
}

/**
 * Who is in which room, cluster-wide. A user is present in a room while at least one of their
 * connections is in it, and is listed once however many connections they hold.
 *
 * - `join` and `leave` answer, atomically with the change, whether the user's presence changed
 *   (first connection in, last connection out): the caller announces `presence.joined` / `.left`.
 * - Entries of an instance whose lease expired are ignored and cleaned up, so the members of a
 *   dead instance disappear within 2 × `WS_HEARTBEAT_MS`.
 * - While the backing store is unreachable, every call rejects with `StoreUnavailableError`.
 */
export interface PresenceStore {
  join(room: string, member: PresenceMember): Promise<boolean>;
  leave(room: string, member: PresenceMember): Promise<boolean>;
  /**
   * Up to `limit` present users (each once), and how many there are in all. `count` may include
   * members of a dead instance until their entries are cleaned up.
   */
  members(room: string, limit: number): Promise<{ members: UserInfo[]; count: number }>;
}
export const PresenceStore = Symbol('PresenceStore');
