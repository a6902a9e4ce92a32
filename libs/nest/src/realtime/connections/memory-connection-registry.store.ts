import type { ConnectionEntry, ConnectionRegistry } from './connection-registry.interface';

/** In-process registry for the embedded (single-instance) mode. */
export class MemoryConnectionRegistry implements ConnectionRegistry {
  /** Arrays: nearly every user holds one connection. */
  private readonly byUser = new Map<string, ConnectionEntry[]>();

  add(entry: ConnectionEntry): Promise<ConnectionEntry[]> {
    const entries = this.byUser.get(entry.userId);
    if (entries === undefined) {
      this.byUser.set(entry.userId, [entry]);
    } else if (!entries.some((e) => e.connectionId === entry.connectionId)) {
      entries.push(entry);
    }
    return this.ofUser(entry.userId);
  }

  remove(entry: ConnectionEntry): Promise<void> {
    const entries = this.byUser.get(entry.userId);
    const at = entries?.findIndex((e) => e.connectionId === entry.connectionId) ?? -1;
    if (entries !== undefined && at >= 0) {
      if (entries.length === 1) {
        this.byUser.delete(entry.userId);
      } else {
        entries.splice(at, 1);
      }
    }
    return Promise.resolve();
  }

  purgeInstance(instanceId: string): Promise<void> {
    for (const [userId, entries] of this.byUser) {
      const kept = entries.filter((entry) => entry.instanceId !== instanceId);
      if (kept.length === 0) {
        this.byUser.delete(userId);
      } else {
        this.byUser.set(userId, kept);
      }
    }
    return Promise.resolve();
  }

  ofUser(userId: string): Promise<ConnectionEntry[]> {
    return Promise.resolve([...(this.byUser.get(userId) ?? [])].sort(byAge));
  }
}

export function byAge(a: ConnectionEntry, b: ConnectionEntry): number {
  return a.connectedAt - b.connectedAt || a.connectionId.localeCompare(b.connectionId);
}
