import type { Broker, BrokerHandler } from './broker.interface';

/** The embedded (single-instance) broker: a publication goes to this instance's handlers alone. */
export class MemoryBroker implements Broker {
  readonly available = true;
  private readonly interest = new Set<string>();
  private readonly handlers: BrokerHandler[] = [];

  publish(channel: string, message: string): Promise<void> {
    if (this.interest.has(channel)) {
      for (const handler of this.handlers) {
        handler(channel, message);
      }
    }
    return Promise.resolve();
  }

  subscribe(channel: string): Promise<void> {
    this.interest.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.interest.delete(channel);
    return Promise.resolve();
  }

  onMessage(handler: BrokerHandler): void {
    this.handlers.push(handler);
  }
}
