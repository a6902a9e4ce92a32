import type { PresenceDiffData, RoomMembersData, UserInfo } from '@switchboard/protocol';

/**
 * What the client knows of one joined room's members: a `room.joined` snapshot (every member in
 * rooms of up to `MAX_LISTED_MEMBERS`, the first page in larger ones), kept current by
 * `presence.diff` and `presence.count`.
 */
export class RoomPresence {
  count: number;
  /**
   * False from the moment the socket closes until the rejoin's `room.joined`: presence frames
   * meanwhile are older than the snapshot to come, and are ignored.
   */
  live = true;
  private readonly byId = new Map<string, UserInfo>();
  /** The members in user-id order, until the next change. */
  private sorted: UserInfo[] | null = null;

  constructor(snapshot: RoomMembersData) {
    for (const { id, name } of snapshot.members) {
      this.byId.set(id, { id, name });
    }
    this.count = snapshot.count;
  }

  /** A diff is idempotent: it may name users already present, or gone users never listed. */
  apply(diff: PresenceDiffData): void {
    for (const { id, name } of diff.joined) {
      this.byId.set(id, { id, name });
    }
    for (const id of diff.left) {
      this.byId.delete(id);
    }
    this.count = diff.count;
    this.sorted = null;
  }

  /** The members in user-id order (the server's order), as copies. */
  members(): UserInfo[] {
    // Code-unit order, like the server's lexicographic paging; not localeCompare.
    this.sorted ??= [...this.byId.values()].sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
    return this.sorted.map((member) => ({ ...member }));
  }
}
