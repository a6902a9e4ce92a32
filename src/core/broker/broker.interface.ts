/**
 * Pub/sub between the instances of a cluster, after Centrifuge's broker. Channels are logical
 * names (`u:<userId>`, `r:<room>`, `all`, `ctl`, `i:<instanceId>`); implementations add the key
 * prefix. Both implementations deliver the same way: a publication reaches the handlers of every
 * instance subscribed to its channel, this one included, so that the node serves its own sockets
 * from the same handler whichever broker runs.
 *
 * - `publish` delivers to this instance's handlers at once (synchronously, before it returns a
 *   promise) when this instance is subscribed, and to every other subscribed instance at most
 *   once, in publish order per publisher. It resolves once the broker accepted the message, and
 *   rejects with `BroadcastUnavailableError` while it cannot (the Redis broker checks
 *   `available` first, so that a call either goes everywhere or tells that it did not).
 * - `subscribe` / `unsubscribe` change this instance's interest; the last call for a channel
 *   wins, and takes effect for local delivery at once. Interest survives reconnects: after an
 *   outage every channel of interest is subscribed again.
 * - Handlers get each message once, with its logical channel.
 */
export interface Broker {
  readonly available: boolean;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  onMessage(handler: BrokerHandler): void;
}
export const Broker = Symbol('Broker');

export type BrokerHandler = (channel: string, message: string) => void;

/** A broadcast could not be handed to the broker (Redis is down). */
export class BroadcastUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('broadcast not sent: Redis is unavailable', options);
    this.name = 'BroadcastUnavailableError';
  }
}
