import type { Broker } from './broker.interface';

/**
 * The embedded (single-instance) broker. There are no other instances to reach, and local sockets
 * are served directly by the bus, so publishing has nothing to do.
 */
export class LocalBroker implements Broker {
  readonly available = true;

  publish(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  unsubscribe(): Promise<void> {
    return Promise.resolve();
  }
  onMessage(): void {
    // No other instance ever publishes.
  }
}
