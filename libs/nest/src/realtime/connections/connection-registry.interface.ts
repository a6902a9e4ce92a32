export interface ConnectionEntry {
  connectionId: string;
  userId: string;
  sessionId: string;
  /** The instance that holds the socket. */
  instanceId: string;
  /** When the socket was accepted, in ms since the epoch; orders a user's connections. */
  connectedAt: number;
}

/**
 * Every connection of every instance, by user: what `MAX_CONNECTIONS_PER_USER` counts.
 *
 * - `add` registers the entry and answers the user's connections, oldest first, this one
 *   included, in one atomic step.
 * - `remove` of an unknown entry is a no-op.
 * - `purgeInstance` removes every entry of a dead instance.
 * - While the backing store is unreachable, every call rejects with `StoreUnavailableError`.
 */
export interface ConnectionRegistry {
  add(entry: ConnectionEntry): Promise<ConnectionEntry[]>;
  remove(entry: ConnectionEntry): Promise<void>;
  ofUser(userId: string): Promise<ConnectionEntry[]>;
  purgeInstance(instanceId: string): Promise<void>;
}
export const ConnectionRegistry = Symbol('ConnectionRegistry');
