/**
 * Pub/sub between instances (after Centrifuge's broker). Channels are logical names
 * (`u:<userId>`, `r:<room>`, `all`, `ctl`, `i:<instanceId>`); implementations add the prefix.
 *
 * - `publish` hands the message to every *other* instance subscribed to the channel, in publish
 *   order per publisher, at most once. It resolves once the broker accepted the message and
 *   rejects with `BroadcastUnavailableError` while the broker is unreachable (nothing is queued).
 * - `subscribe` / `unsubscribe` change this instance's interest; the last call for a channel wins.
 *   Interest survives reconnects: after an outage every channel of interest is subscribed again.
 * - Handlers get every message of every channel this instance is subscribed to, including its own
 *   publishes (recipients skip those by origin).
 */
export interface Broker {
  readonly available: boolean;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  onMessage(handler: (channel: string, message: string) => void): void;
}
export const Broker = Symbol('Broker');

/** A broadcast could not be handed to the broker (Redis is down). */
export class BroadcastUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('broadcast not sent: Redis is unavailable', options);
    this.name = 'BroadcastUnavailableError';
  }
}
