import type { UserInfo } from '@switchboard/protocol';
import type { PresenceMember, PresenceStore, PurgedMember } from './presence-store.interface';

/** In-process presence for the embedded (single-instance) mode. */
export class MemoryPresenceStore implements PresenceStore {
  /** room → userId → { name, connection id → instance id } */
  private readonly rooms = new Map<
    string,
    Map<string, { name: string; connections: Map<string, string> }>
  >();

  join(room: string, member: PresenceMember): Promise<boolean> {
    let users = this.rooms.get(room);
    if (users === undefined) {
      users = new Map();
      this.rooms.set(room, users);
    }
    let user = users.get(member.userId);
    const fresh = user === undefined;
    if (user === undefined) {
      user = { name: member.name, connections: new Map() };
      users.set(member.userId, user);
    }
    user.connections.set(member.connectionId, member.instanceId);
    return Promise.resolve(fresh);
  }

  leave(room: string, member: PresenceMember): Promise<{ gone: boolean; count: number }> {
    const users = this.rooms.get(room);
    const user = users?.get(member.userId);
    if (
      users === undefined ||
      user === undefined ||
      !user.connections.delete(member.connectionId) ||
      user.connections.size > 0
    ) {
      return Promise.resolve({ gone: false, count: users?.size ?? 0 });
    }
    this.forget(room, users, member.userId);
    return Promise.resolve({ gone: true, count: users.size });
  }

  members(room: string, limit: number): Promise<{ members: UserInfo[]; count: number }> {
    const users = this.rooms.get(room);
    const members: UserInfo[] = [];
    for (const [id, { name }] of users ?? []) {
      if (members.length >= limit) {
        break;
      }
      members.push({ id, name });
    }
    return Promise.resolve({ members, count: users?.size ?? 0 });
  }

  purgeInstance(instanceId: string): Promise<PurgedMember[]> {
    const purged: PurgedMember[] = [];
    for (const [room, users] of this.rooms) {
      const gone: UserInfo[] = [];
      for (const [id, user] of users) {
        for (const [connectionId, instance] of user.connections) {
          if (instance === instanceId) {
            user.connections.delete(connectionId);
          }
        }
        if (user.connections.size === 0) {
          this.forget(room, users, id);
          gone.push({ id, name: user.name });
        }
      }
      purged.push(...gone.map((user) => ({ room, user, count: users.size })));
    }
    return Promise.resolve(purged);
  }

  private forget(room: string, users: Map<string, unknown>, userId: string): void {
    users.delete(userId);
    if (users.size === 0) {
      this.rooms.delete(room);
    }
  }
}
