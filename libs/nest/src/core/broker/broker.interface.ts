/**
 * Pub/sub between the instances of a cluster, with streams, after Centrifuge's broker. Channels
 * are logical names (`u:<userId>`, `r:<room>`, `all`, `ctl`, `i:<instanceId>`); implementations
 * add the key prefix. Both implementations deliver the same way: a publication reaches the
 * handlers of every instance subscribed to its channel, this one included, so that the node serves
 * its own sockets from the same handler whichever broker runs.
 *
 * - `publish` sends an ephemeral message. It delivers to this instance's handlers at once
 *   (synchronously, before it returns a promise) when this instance is subscribed, and to every
 *   other subscribed instance at most once, in publish order per publisher. It resolves once the
 *   broker accepted the message, and rejects with `BroadcastUnavailableError` while it cannot
 *   (the Redis broker checks `available` first, so that a call either goes everywhere or tells
 *   that it did not).
 * - `publishToStream` puts a publication into the channel's stream: in one atomic step it gets
 *   the next offset (1, 2, 3, … with no gaps, in the order publications reach the broker from
 *   any instance), is kept in the stream's history (the last `size`, for `ttlMs` after the
 *   stream's last publication) and is delivered with its offset. Every instance, this one
 *   included, delivers a stream's publications in offset order.
 * - `publishToStream` with `existingOnly` keeps the publication only in a stream that exists (that
 *   a reader started, by `history`, or a publication did, within its lifetime); to a channel
 *   without one it delivers the message as `publish` does, ephemeral, and answers `null`. A user's
 *   stream exists only for users who connected lately: publishing to users who never did stores
 *   nothing for them.
 * - `history` reads where a stream stands and some of its kept publications, in one step, so
 *   that the position and the publications agree. A stream with no epoch yet gets one.
 * - `subscribe` / `unsubscribe` change this instance's interest; the last call for a channel
 *   wins, and takes effect for local delivery at once. Interest survives reconnects: after an
 *   outage every channel of interest is subscribed again.
 * - Handlers get each message once, with its logical channel, its offset and its stream's epoch
 *   (0 and '' when ephemeral). A stream's live publications may reach the handlers after a
 *   `history` call has already counted them: a reader deduplicates by epoch and offset.
 */
export interface Broker {
  readonly available: boolean;
  /** How many channels this instance is subscribed to. */
  readonly subscriptions: number;
  publish(channel: string, message: string): Promise<void>;
  publishToStream(channel: string, message: string): Promise<StreamPosition>;
  publishToStream(
    channel: string,
    message: string,
    existingOnly: boolean,
  ): Promise<StreamPosition | null>;
  history(channel: string, query: HistoryQuery): Promise<StreamHistory>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  onMessage(handler: BrokerHandler): void;
  /**
   * Called each time the channels of interest were subscribed again after the link to the other
   * instances dropped (a Redis restart, a cluster's slot change): ephemeral messages published
   * meanwhile never came. An in-process broker never drops, and never calls.
   */
  onResubscribed(listener: () => void): void;
}
export const Broker = Symbol('Broker');

export type BrokerHandler = (
  channel: string,
  message: string,
  offset: number,
  epoch: string,
) => void;

/**
 * Where a stream stands. `epoch` changes whenever the stream's history was lost (Redis lost its
 * data, the stream expired, an embedded instance restarted); `offset` is its latest publication's.
 */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/** A publication kept in a stream's history. */
export interface Publication {
  offset: number;
  message: string;
}

/**
 * Which kept publications to read, oldest first: those after offset `after` (recovery), or the
 * last `limit` before offset `before` (scrollback), or the last `limit` (neither given).
 */
export interface HistoryQuery {
  after?: number;
  before?: number;
  limit: number;
}

export interface StreamHistory {
  position: StreamPosition;
  publications: Publication[];
}

/** How much history each stream keeps. */
export interface StreamOptions {
  /** Publications kept per stream. */
  size: number;
  /** How long a stream's publications are kept after its last publication. */
  ttlMs: number;
  /**
   * How long a stream's epoch and offset outlive its last publication or read: longer than its
   * history, so that a client that missed nothing recovers even after the history expired.
   */
  metaTtlMs: number;
}

/** A day, or the history's lifetime if longer. */
export function streamOptions(history: { size: number; ttlMs: number }): StreamOptions {
  return { ...history, metaTtlMs: Math.max(history.ttlMs, 86_400_000) };
}

/** A broadcast could not be handed to the broker (Redis is down). */
export class BroadcastUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('broadcast not sent: Redis is unavailable', options);
    this.name = 'BroadcastUnavailableError';
  }
}
