import { Logger } from '@nestjs/common';
import type { RedisConnections } from '../redis/redis.connections';
import { BroadcastUnavailableError, type Broker } from './broker.interface';

/** Redis pub/sub: publishes on the command connection, listens on the subscriber connection. */
export class RedisBroker implements Broker {
  private readonly logger = new Logger(RedisBroker.name);
  private readonly interest = new Set<string>();
  private readonly handlers: Array<(channel: string, message: string) => void> = [];
  /** Messages received from Redis, for tests and diagnostics. */
  received = 0;

  constructor(private readonly redis: RedisConnections) {
    const prefixLength = redis.prefix.length;
    redis.subscriber.on('message', (channel: string, message: string) => {
      this.received += 1;
      const logical = channel.slice(prefixLength);
      for (const handler of this.handlers) {
        handler(logical, message);
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
    try {
      await this.redis.command.publish(this.redis.prefix + channel, message);
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

  onMessage(handler: (channel: string, message: string) => void): void {
    this.handlers.push(handler);
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
