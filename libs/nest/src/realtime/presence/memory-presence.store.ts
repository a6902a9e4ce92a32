import type { UserInfo } from '@switchboard/protocol';
import type {
  MembersPage,
  PresenceMember,
  PresenceStore,
  PurgedMember,
} from './presence-store.interface';

interface RoomPresence {
  /** userId → name and connection id → instance id */
  users: Map<string, { name: string; connections: Map<string, string> }>;
  /** The user ids in sorted order, for paging. */
  order: string[];
}

/** In-process presence for the embedded (single-instance) mode. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly rooms = new Map<string, RoomPresence>();

  join(room: string, member: PresenceMember): Promise<{ fresh: boolean; count: number }> {
    let presence = this.rooms.get(room);
    if (presence === undefined) {
      presence = { users: new Map(), order: [] };
      this.rooms.set(room, presence);
    }
    let user = presence.users.get(member.userId);
    const fresh = user === undefined;
    if (user === undefined) {
      user = { name: member.name, connections: new Map() };
      presence.users.set(member.userId, user);
      presence.order.splice(firstAfter(presence.order, member.userId), 0, member.userId);
    }
    user.connections.set(member.connectionId, member.instanceId);
    return Promise.resolve({ fresh, count: presence.users.size });
  }

  leave(room: string, member: PresenceMember): Promise<{ gone: boolean; count: number }> {
    const presence = this.rooms.get(room);
    const user = presence?.users.get(member.userId);
    if (
      presence === undefined ||
      user === undefined ||
      !user.connections.delete(member.connectionId) ||
      user.connections.size > 0
    ) {
      return Promise.resolve({ gone: false, count: presence?.users.size ?? 0 });
    }
    this.forget(room, presence, member.userId);
    return Promise.resolve({ gone: true, count: presence.users.size });
  }

  page(room: string, limit: number, after?: string): Promise<MembersPage> {
    const presence = this.rooms.get(room);
    if (presence === undefined) {
      return Promise.resolve({ members: [], count: 0 });
    }
    const from = after === undefined ? 0 : firstAfter(presence.order, after);
    const ids = presence.order.slice(from, from + limit);
    const members = ids.map((id) => ({ id, name: presence.users.get(id)!.name }));
    const more = from + limit < presence.order.length;
    return Promise.resolve({
      members,
      count: presence.users.size,
      ...(more && ids.length > 0 ? { next: ids[ids.length - 1] } : {}),
    });
  }

  check(room: string, userIds: readonly string[]): Promise<{ present: UserInfo[]; count: number }> {
    const users = this.rooms.get(room)?.users;
    const present: UserInfo[] = [];
    for (const id of userIds) {
      const user = users?.get(id);
      if (user !== undefined) {
        present.push({ id, name: user.name });
      }
    }
    return Promise.resolve({ present, count: users?.size ?? 0 });
  }

  count(room: string): Promise<number> {
    return Promise.resolve(this.rooms.get(room)?.users.size ?? 0);
  }

  purgeInstance(instanceId: string): Promise<PurgedMember[]> {
    const purged: PurgedMember[] = [];
    for (const [room, presence] of [...this.rooms]) {
      for (const [id, user] of [...presence.users]) {
        for (const [connectionId, instance] of user.connections) {
          if (instance === instanceId) {
            user.connections.delete(connectionId);
          }
        }
        if (user.connections.size === 0) {
          this.forget(room, presence, id);
          purged.push({ room, user: { id, name: user.name } });
        }
      }
    }
    return Promise.resolve(purged);
  }

  private forget(room: string, presence: RoomPresence, userId: string): void {
    presence.users.delete(userId);
    presence.order.splice(firstAfter(presence.order, userId) - 1, 1);
    if (presence.users.size === 0) {
      this.rooms.delete(room);
    }
  }
}

/** The index of the first id that sorts after `id` (binary search in the ordered ids). */
function firstAfter(order: readonly string[], id: string): number {
  let low = 0;
  let high = order.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (order[middle] <= id) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}
