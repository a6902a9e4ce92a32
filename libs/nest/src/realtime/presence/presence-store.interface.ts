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
}

/** One page of a room's members, in user-id order, and how many there are in all. */
export interface MembersPage {
  members: UserInfo[];
  count: number;
  /** The last listed id, while more members may follow: the next page starts after it. */
  next?: string;
}

/**
 * Who is in which room, cluster-wide. A user is present in a room while at least one of their
 * connections is in it, and is listed once however many connections they hold.
 *
 * - `join` and `leave` answer, atomically with the change, whether the user's presence changed
 *   (first connection in, last connection out) and how many users the room has now. Joining with
 *   a connection that is in already changes nothing and answers `fresh: false`.
 * - `page` lists members in user-id order after `after`: a member present while a client pages is
 *   listed exactly once, however many others come and go meanwhile.
 * - `check` answers which of the named users are present now, with the count, in one step: a
 *   batch of presence changes is told as it stands, whatever order its parts arrived in.
 * - `purgeInstance` removes every connection of a dead instance and answers the users whose
 *   presence ended.
 * - While the backing store is unreachable, every call rejects with `StoreUnavailableError`.
 */
export interface PresenceStore {
  join(room: string, member: PresenceMember): Promise<{ fresh: boolean; count: number }>;
  leave(room: string, member: PresenceMember): Promise<{ gone: boolean; count: number }>;
  page(room: string, limit: number, after?: string): Promise<MembersPage>;
  check(room: string, userIds: readonly string[]): Promise<{ present: UserInfo[]; count: number }>;
  count(room: string): Promise<number>;
  purgeInstance(instanceId: string): Promise<PurgedMember[]>;
}
export const PresenceStore = Symbol('PresenceStore');
