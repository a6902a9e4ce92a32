import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../common/errors';

/**
 * Commands fail fast while Redis is down: no offline queue, a bounded command timeout, one
 * attempt per command. The connection itself retries forever with capped, jittered backoff.
 */
const OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2_000,
  connectTimeout: 3_000,
  autoResubscribe: false,
  retryStrategy: (attempt) =>
    Math.min(100 * 2 ** Math.min(attempt, 4), 1_000) + Math.random() * 100,
};

/**
 * The two Redis connections of an instance in cluster mode: one for commands and publishes, one
 * for subscriptions. `REDIS_PREFIX` goes in front of every key and channel (see `key`).
 */
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnections.name);
  readonly command: Redis;
  readonly subscriber: Redis;
  private readonly prober: NodeJS.Timeout;
  private wasUp = false;
  private readonly upListeners = new Set<() => void>();
  private readonly downListeners = new Set<() => void>();

  /** @param probe how often each link is probed with PING, and how long an answer may take */
  constructor(
    url: string,
    readonly prefix: string,
    private readonly probe: { intervalMs: number; timeoutMs: number } = {
      intervalMs: 5_000,
      timeoutMs: 2_000,
    },
  ) {
    this.command = this.connect(url, 'command');
    this.subscriber = this.connect(url, 'subscriber');
    this.prober = setInterval(() => {
      void this.probeLink(this.command, 'command');
      void this.probeLink(this.subscriber, 'subscriber');
    }, probe.intervalMs);
    this.prober.unref();
  }

  /** Both connections are ready. */
  get up(): boolean {
    return this.command.status === 'ready' && this.subscriber.status === 'ready';
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** Called each time the subscriber connection becomes ready (again). */
  onSubscriberReady(listener: () => void): void {
    this.subscriber.on('ready', listener);
  }

  /** Called each time both connections are ready after an outage (or at first). */
  onUp(listener: () => void): void {
    this.upListeners.add(listener);
  }

  /** Called each time a connection is lost after both were ready. */
  onDown(listener: () => void): void {
    this.downListeners.add(listener);
  }

  /**
   * Runs a command for a store, turning connection failures into `StoreUnavailableError` so
   * that callers fail closed with a clear answer.
   */
  async run<T>(store: string, command: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await command(this.command);
    } catch (error) {
      throw new StoreUnavailableError(store, { cause: error });
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.prober);
    await Promise.all([quit(this.command), quit(this.subscriber)]);
  }

  private connect(url: string, role: 'command' | 'subscriber'): Redis {
    const redis = new Redis(url, { ...OPTIONS, connectionName: `switchboard-${role}` });
    redis.on('error', (error: Error & { code?: string }) => {
      // ioredis reports every failed reconnect; the up/down transition below is what matters.
      this.logger.debug({
        msg: 'redis connection error',
        role,
        code: error.code,
        error: error.message,
      });
    });
    redis.on('ready', () => this.transition());
    redis.on('close', () => this.transition());
    return redis;
  }

  private transition(): void {
    const up = this.up;
    if (up === this.wasUp) {
      return;
    }
    this.wasUp = up;
    if (up) {
      this.logger.log({ msg: 'redis up' });
      this.upListeners.forEach((listener) => listener());
    } else {
      this.logger.warn({ msg: 'redis down: shared stores fail closed until it returns' });
      this.downListeners.forEach((listener) => listener());
    }
  }

  /**
   * A half-open link (the peer gone without a FIN) would drop every broadcast silently: a PING
   * that is not answered in time replaces the connection. In subscriber mode PING is allowed too.
   */
  private async probeLink(redis: Redis, role: 'command' | 'subscriber'): Promise<void> {
    if (redis.status !== 'ready') {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        redis.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('PING timed out')), this.probe.timeoutMs);
        }),
      ]);
    } catch (error) {
      this.logger.warn({
        msg: 'redis link did not answer PING; reconnecting it',
        role,
        error: (error as Error).message,
      });
      redis.disconnect(true);
    } finally {
      clearTimeout(timer);
    }
  }
}

async function quit(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // QUIT could not be sent; fall through and drop the connection.
    }
  }
  redis.disconnect(false);
}
