import type { ConnectionEntry, ConnectionRegistry } from './connection-registry.interface';

/** In-process registry for the embedded (single-instance) mode. */
export class MemoryConnectionRegistry implements ConnectionRegistry {
  private readonly byUser = new Map<string, Map<string, ConnectionEntry>>();

  add(entry: ConnectionEntry): Promise<ConnectionEntry[]> {
    let entries = this.byUser.get(entry.userId);
    if (entries === undefined) {
      entries = new Map();
      this.byUser.set(entry.userId, entries);
    }
    entries.set(entry.connectionId, entry);
    return this.ofUser(entry.userId);
  }

  remove(entry: ConnectionEntry): Promise<void> {
    const entries = this.byUser.get(entry.userId);
    if (entries?.delete(entry.connectionId) && entries.size === 0) {
      this.byUser.delete(entry.userId);
    }
    return Promise.resolve();
  }

  ofUser(userId: string): Promise<ConnectionEntry[]> {
    const entries = [...(this.byUser.get(userId)?.values() ?? [])];
    return Promise.resolve(entries.sort(byAge));
  }
}

export function byAge(a: ConnectionEntry, b: ConnectionEntry): number {
  return a.connectedAt - b.connectedAt || a.connectionId.localeCompare(b.connectionId);
}
