import type { UserInfo } from '@switchboard/protocol';

export interface PresenceMember {
  userId: string;
  name: string;
  connectionId: string;
  instanceId: string;
}

/** A user whose presence in a room ended when a dead instance was purged. */
export interface PurgedMember {
  room: string;
  user: UserInfo;
  /** How many users the room has left. */
  count: number;
}

/**
 * Who is in which room, cluster-wide. A user is present in a room while at least one of their
 * connections is in it, and is listed once however many connections they hold.
 *
 * - `join` and `leave` answer, atomically with the change, whether the user's presence changed
 *   (first connection in, last connection out): the caller announces `presence.joined` / `.left`.
 *   Joining with a connection that is in already changes nothing and answers false. `leave` also
 *   answers how many users the room has left.
 * - `purgeInstance` removes every connection of a dead instance and answers the users whose
 *   presence ended, so that the instance that purged it can announce `presence.left` once.
 * - While the backing store is unreachable, every call rejects with `StoreUnavailableError`.
 */
export interface PresenceStore {
  join(room: string, member: PresenceMember): Promise<boolean>;
  leave(room: string, member: PresenceMember): Promise<{ gone: boolean; count: number }>;
  /** Up to `limit` present users (each once), and how many there are in all. */
  members(room: string, limit: number): Promise<{ members: UserInfo[]; count: number }>;
  purgeInstance(instanceId: string): Promise<PurgedMember[]>;
}
export const PresenceStore = Symbol('PresenceStore');
