import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../common/errors';
import type { RedisMode } from '../config/app-config';

/**
 * A connection to Redis: one server (`single`) or a Redis Cluster, which routes each command to
 * the master of its key's slot. The command set is the same; what differs is in `RedisConnections`.
 */
export type RedisClient = Redis | Cluster;

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
 * Redis Cluster: commands go to the master of their slot and fail fast while it has none (a
 * failover in progress): a few quick retries on CLUSTERDOWN/TRYAGAIN, then the error, within
 * `commandTimeout`. The slot map is refreshed every 5 s and on every MOVED.
 */
const CLUSTER_OPTIONS: ClusterOptions = {
  enableOfflineQueue: false,
  maxRedirections: 6,
  retryDelayOnFailover: 100,
  retryDelayOnClusterDown: 200,
  retryDelayOnTryAgain: 100,
  retryDelayOnMoved: 0,
  slotsRefreshTimeout: 2_000,
  slotsRefreshInterval: 5_000,
  clusterRetryStrategy: OPTIONS.retryStrategy,
};

/**
 * The two Redis connections of an instance (with `REDIS_URL` set): one for commands and
 * publishes, one for subscriptions. `REDIS_PREFIX` goes in front of every key and channel (see
 * `key`). With `REDIS_MODE=cluster` both are ioredis `Cluster`s over the seed nodes of
 * `REDIS_URL`; the subscriber then also holds one sharded subscriber per master for the channels
 * that use sharded pub/sub (`SSUBSCRIBE`), and ioredis moves them to the new master after a
 * failover or a slot migration, once its slot map shows the move (`subscriptionLost` asks it to
 * look at once).
 */
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnections.name);
  readonly command: RedisClient;
  readonly subscriber: RedisClient;
  private readonly prober: NodeJS.Timeout;
  private wasUp = false;
  private readonly upListeners = new Set<() => void>();
  private readonly errorListeners = new Set<(kind: RedisErrorKind) => void>();
  private readonly downListeners = new Set<() => void>();
  private readonly outageListeners = new Set<(error: RedisOutageError) => void>();
  /** The current outage was told to the `onOutage` listeners; false again once Redis is up. */
  private outageTold = false;
  /** The last connection error since Redis was last up: the cause of an outage. */
  private lastError: Error | undefined;
  private closing = false;
  /** When a subscription was last found lost (`subscriptionLost`), until the shards resubscribed. */
  private lostAt: number | null = null;

  /**
   * @param url one URL, or in cluster mode a comma-separated list of seed nodes
   * @param probe how often each link is probed with PING, and how long an answer may take
   */
  constructor(
    url: string,
    readonly prefix: string,
    readonly probe: { intervalMs: number; timeoutMs: number } = {
      intervalMs: 5_000,
      timeoutMs: 2_000,
    },
    readonly mode: RedisMode = 'single',
  ) {
    this.command = this.connect(url, 'command');
    this.subscriber = this.connect(url, 'subscriber');
    if (this.subscriber instanceof Cluster) {
      // ioredis recreated the shards' subscribers for a new slot map and subscribed them again.
      this.subscriber.on('subscribersReady', () => (this.lostAt = null));
      this.subscriber.on('nodeError', (error: Error) => {
        this.logger.warn({ msg: 'redis shard subscriber error', error: error.message });
        if (redisErrorKind(error) === 'subscription') {
          this.subscriptionLost();
        } else {
          this.failed(error);
        }
      });
    }
    this.prober = setInterval(() => {
      void this.probeLink(this.command, 'command');
      void this.probeLink(this.subscriber, 'subscriber');
      for (const link of this.shardLinks()) {
        void this.probeLink(link, 'shard subscriber');
      }
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

  /**
   * Redis Cluster: called each time ioredis subscribed the shards again for a new slot map (a
   * failover, a slot migration, a shard's subscriber replaced). What was published on a shard
   * before its subscription moved there did not come through pub/sub.
   */
  onShardsResubscribed(listener: () => void): void {
    this.subscriber.on('subscribersReady', listener);
  }

  /**
   * Reports a subscription found lost: a publication that pub/sub never brought (an echo late, a
   * gap in a stream). Counted as a `subscription` error; readiness reports it until the shards
   * are subscribed again, or for one probe interval. On a Redis Cluster the subscriber re-reads
   * the slot map at once (on its own it does every 5 s), so that ioredis moves the subscriptions
   * of a slot that changed master.
   */
  subscriptionLost(): void {
    this.errorListeners.forEach((listener) => listener('subscription'));
    this.lostAt = Date.now();
    if (this.subscriber instanceof Cluster) {
      this.subscriber.refreshSlotsCache();
    }
  }

  /**
   * Why some subscriptions may not cover their channels right now, or null: one was found lost in
   * the last probe interval and the shards have not been subscribed again since, or a shard's
   * subscriber link is down.
   */
  get subscriptionProblem(): string | null {
    if (this.lostAt !== null && Date.now() - this.lostAt < this.probe.intervalMs) {
      return 'a subscription was lost; resubscribing';
    }
    const down = this.shardLinks().find((link) => DOWN.has(link.status));
    return down === undefined ? null : `a shard subscriber link is ${down.status}`;
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
   * Called once per outage, not at every reconnect attempt: when a connection is lost after both
   * were ready, or when Redis cannot be reached before it ever was (at boot). Not at shutdown.
   */
  onOutage(listener: (error: RedisOutageError) => void): void {
    this.outageListeners.add(listener);
  }

  /** Called with the kind of every failed command (see `failed`). */
  onError(listener: (kind: RedisErrorKind) => void): void {
    this.errorListeners.add(listener);
  }

  /** Reports a failed command to the `onError` listeners; answers the error. */
  failed(error: unknown): unknown {
    const kind = redisErrorKind(error);
    if (kind === 'redirect' && this.command instanceof Cluster) {
      // Only a pipeline lets a MOVED through (auto-pipelining: when some of its commands
      // succeeded), and then ioredis keeps the old slot map until its next periodic refresh.
      this.command.refreshSlotsCache();
    }
    this.errorListeners.forEach((listener) => listener(kind));
    return error;
  }

  /**
   * Runs a command for a store, turning connection failures into `StoreUnavailableError` so
   * that callers fail closed with a clear answer.
   */
  async run<T>(store: string, command: (redis: RedisClient) => Promise<T>): Promise<T> {
    try {
      return await command(this.command);
    } catch (error) {
      throw new StoreUnavailableError(store, { cause: this.failed(error) });
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    clearInterval(this.prober);
    await Promise.all([quit(this.command), quit(this.subscriber)]);
  }

  /**
   * Redis Cluster: the sharded subscriber connections, one per master, that ioredis keeps inside
   * the subscriber `Cluster` (not public API: if a release moves them, none are probed, and the
   * `shardLinks` integration test fails).
   */
  shardLinks(): Redis[] {
    const group = (this.subscriber as unknown as ShardedInternals).shardedSubscribers;
    const subscribers = group?.shardedSubscribers;
    if (!(this.subscriber instanceof Cluster) || !(subscribers instanceof Map)) {
      return [];
    }
    return [...subscribers.values()]
      .map((subscriber) => subscriber.getInstance?.())
      .filter((link): link is Redis => link instanceof Redis);
  }

  /** PING on every master (the one server): resolves once all answered. */
  async ping(): Promise<void> {
    await Promise.all(this.masters().map((node) => node.ping()));
  }

  /**
   * Every master's connection (the one server in single mode): what a scan over all keys, or a
   * check of every shard, goes through.
   */
  masters(): Redis[] {
    return this.command instanceof Cluster ? this.command.nodes('master') : [this.command];
  }

  private connect(url: string, role: 'command' | 'subscriber'): RedisClient {
    const connectionName = `switchboard-${role}`;
    // Commands issued in one event-loop turn leave in one write (auto-pipelining): under a
    // reconnect storm, one write per command cost a fifth of the instance's CPU in system calls.
    const enableAutoPipelining = role === 'command';
    const redis: RedisClient =
      this.mode === 'cluster'
        ? new Cluster(seedNodes(url), {
            ...CLUSTER_OPTIONS,
            enableAutoPipelining,
            // Sharded pub/sub: one subscriber per master, for the channels of its slots.
            shardedSubscribers: role === 'subscriber',
            redisOptions: { ...OPTIONS, ...credentials(url), connectionName },
          })
        : new Redis(url, { ...OPTIONS, connectionName, enableAutoPipelining });
    redis.on('error', (error: Error & { code?: string }) => {
      // ioredis reports every failed reconnect; the up/down transition below is what matters.
      this.logger.debug({
        msg: 'redis connection error',
        role,
        code: error.code,
        error: error.message,
      });
      this.lastError = error;
      if (!this.wasUp) {
        this.outage(`Redis unreachable (the ${role} link): ${error.message}`);
      }
    });
    redis.on('ready', () => this.transition(role));
    redis.on('close', () => this.transition(role));
    return redis;
  }

  private transition(role: 'command' | 'subscriber'): void {
    const up = this.up;
    if (up === this.wasUp) {
      return;
    }
    this.wasUp = up;
    if (up) {
      this.outageTold = false;
      this.lastError = undefined;
      this.logger.log({ msg: 'redis up' });
      this.upListeners.forEach((listener) => listener());
    } else {
      this.logger.warn({ msg: 'redis down: shared stores fail closed until it returns' });
      this.downListeners.forEach((listener) => listener());
      this.outage(
        `Redis down (the ${role} link was lost): shared stores fail closed until it returns`,
      );
    }
  }

  private outage(message: string): void {
    if (this.closing || this.outageTold) {
      return;
    }
    this.outageTold = true;
    const error = new RedisOutageError(message, { cause: this.lastError });
    this.outageListeners.forEach((listener) => listener(error));
  }

  /**
   * A half-open link (the peer gone without a FIN) would drop every broadcast silently: a PING
   * that is not answered in time replaces the connection. In subscriber mode PING is allowed too.
   */
  private async probeLink(
    redis: RedisClient,
    role: 'command' | 'subscriber' | 'shard subscriber',
  ): Promise<void> {
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
      // A shard's subscriber is replaced by ioredis once it ends (it does not reconnect itself).
      redis.disconnect(role !== 'shard subscriber');
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Redis became unreachable; `cause` is the connection's last error, when it reported one. */
export class RedisOutageError extends Error {
  override readonly name = 'RedisOutageError';
}

/** A shard's subscriber link in these states lost its subscriptions until ioredis replaces it. */
const DOWN = new Set(['reconnecting', 'close', 'end']);

/** Where ioredis 5 keeps a cluster's sharded subscribers (ClusterSubscriberGroup). */
interface ShardedInternals {
  shardedSubscribers?: {
    shardedSubscribers?: Map<string, { getInstance?: () => Redis | null }>;
  };
}

export type RedisErrorKind =
  | 'connection'
  | 'timeout'
  | 'cluster_down'
  | 'try_again'
  | 'redirect'
  | 'cross_slot'
  | 'subscription'
  | 'other';

/**
 * What went wrong, in a few kinds an operator can act on: the link (`connection`, `timeout`), a
 * cluster without a master for a slot (`cluster_down`, during a failover), a slot on the move
 * (`try_again`, `redirect`), a command that spans slots (`cross_slot`: a bug), a subscription
 * that stopped delivering (`subscription`: a shard that dropped this instance's subscriptions
 * when its slots moved, or a publication that pub/sub never brought; see `subscriptionLost`).
 */
export function redisErrorKind(error: unknown): RedisErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string } | null)?.code;
  if (message.startsWith('CLUSTERDOWN')) {
    return 'cluster_down';
  }
  if (message.startsWith('TRYAGAIN')) {
    return 'try_again';
  }
  if (message.startsWith('MOVED') || message.startsWith('ASK') || /redirection/i.test(message)) {
    return 'redirect';
  }
  if (message.startsWith('CROSSSLOT')) {
    return 'cross_slot';
  }
  // A shard whose slot moved away (failover, migration) unsubscribes its clients unasked; ioredis
  // 5 then reports a reply that no command waited for.
  if (/Last reply: s?unsubscribe,/.test(message)) {
    return 'subscription';
  }
  if (/timed? ?out/i.test(message) || code === 'ETIMEDOUT') {
    return 'timeout';
  }
  if (
    (code !== undefined && /^E(CONN|PIPE|HOSTUNREACH|NOTFOUND|AI_AGAIN)/.test(code)) ||
    /connection|writeable|closed|offline queue|All nodes failed|No sharded subscriber/i.test(
      message,
    )
  ) {
    return 'connection';
  }
  return 'other';
}

/** The seed nodes of a cluster `REDIS_URL` (validated at boot: redis:// or rediss://, host:port). */
function seedNodes(url: string): Array<{ host: string; port: number }> {
  return url.split(',').map((seed) => {
    const parsed = new URL(seed);
    return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 6379) };
  });
}

/**
 * What every node of a cluster is connected with, taken from the first seed: the user and
 * password of its URL, and TLS for `rediss://`. Nodes that the cluster announces get the same.
 */
function credentials(url: string): RedisOptions {
  const first = new URL(url.split(',')[0]);
  return {
    ...(first.username || first.password
      ? {
          username: decodeURIComponent(first.username) || undefined,
          password: decodeURIComponent(first.password),
        }
      : {}),
    ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

async function quit(redis: RedisClient): Promise<void> {
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
