import { Logger } from '@nestjs/common';
import type { RedisConnections } from '../../redis/redis.connections';
import { BroadcastUnavailableError, type Broker, type BrokerHandler } from './broker.interface';

/**
 * Redis pub/sub: publishes on the command connection, listens on the subscriber connection. A
 * message on the wire is `<publishing instance id>|<message>`: this instance delivers its own
 * publications locally as it publishes them, and skips their echo from Redis.
 */
export class RedisBroker implements Broker {
  private readonly logger = new Logger(RedisBroker.name);
  private readonly interest = new Set<string>();
  private readonly handlers: BrokerHandler[] = [];
  private readonly origin: string;

  constructor(
    private readonly redis: RedisConnections,
    instanceId: string,
  ) {
    this.origin = `${instanceId}|`;
    const prefixLength = redis.prefix.length;
    redis.subscriber.on('message', (channel: string, wire: string) => {
      if (!wire.startsWith(this.origin)) {
        this.deliver(channel.slice(prefixLength), wire.slice(wire.indexOf('|') + 1));
      }
    });
    redis.onSubscriberReady(() => void this.resubscribe());
  }

  get available(): boolean {
    return this.redis.up;
  }

  async publish(channel: string, message: string): Promise<void> {
    if (this.redis.command.status !== 'ready') {
      throw new BroadcastUnavailableError();
    }
    // Handed to Redis first (the command is written now), then the local send loop runs while
    // Redis works: serving local sockets first would make every other instance wait for it.
    const sent = this.redis.command.publish(this.redis.prefix + channel, this.origin + message);
    sent.catch(() => undefined); // awaited below; no unhandled rejection while the loop runs
    if (this.interest.has(channel)) {
      this.deliver(channel, message);
    }
    try {
      await sent;
    } catch (error) {
      throw new BroadcastUnavailableError({ cause: error });
    }
  }

  async subscribe(channel: string): Promise<void> {
    this.interest.add(channel);
    await this.apply(() => this.redis.subscriber.subscribe(this.redis.prefix + channel));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.interest.delete(channel);
    await this.apply(() => this.redis.subscriber.unsubscribe(this.redis.prefix + channel));
  }

  onMessage(handler: BrokerHandler): void {
    this.handlers.push(handler);
  }

  private deliver(channel: string, message: string): void {
    for (const handler of this.handlers) {
      handler(channel, message);
    }
  }

  /** While the subscriber is down the change is only recorded; `resubscribe` applies it later. */
  private async apply(command: () => Promise<unknown>): Promise<void> {
    if (this.redis.subscriber.status !== 'ready') {
      return;
    }
    try {
      await command();
    } catch (error) {
      this.logger.warn({
        msg: 'subscription change deferred until Redis returns',
        error: (error as Error).message,
      });
    }
  }

  private async resubscribe(): Promise<void> {
    if (this.interest.size === 0) {
      return;
    }
    const channels = [...this.interest].map((channel) => this.redis.prefix + channel);
    try {
      await this.redis.subscriber.subscribe(...channels);
      this.logger.log({ msg: 'resubscribed', channels: channels.length });
    } catch (error) {
      this.logger.warn({
        msg: 'resubscribe failed; the next reconnect retries',
        error: (error as Error).message,
      });
    }
  }
}
