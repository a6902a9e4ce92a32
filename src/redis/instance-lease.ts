import { type BeforeApplicationShutdown, Logger } from '@nestjs/common';
import type { Result } from 'ioredis';
import type { RedisConnections } from './redis.connections';

/**
 * One round of the lease, atomically, on three keys of one hash slot: renew this instance's
 * lease (KEYS[1], a sorted set scored by expiry in Redis time), claim the instances whose lease
 * expired (moved to KEYS[2], scored by when the claim lapses, and claimed again if the claimer
 * died before it finished), and forget purged instances (KEYS[3]) after ARGV[4] ms.
 *
 * Answers: whether this instance's lease was lost (absent or expired), whether this instance is
 * itself being purged or was purged, and the ids it claimed now.
 */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local self, ttl, claim, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local previous = redis.call('ZSCORE', KEYS[1], self)
local lost = (not previous or tonumber(previous) < now) and 1 or 0
redis.call('ZADD', KEYS[1], now + ttl, self)
local claimed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + claim, id)
  claimed[#claimed + 1] = id
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)) do
  redis.call('ZADD', KEYS[2], now + claim, id)
  claimed[#claimed + 1] = id
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - keep))
local purging = redis.call('ZSCORE', KEYS[2], self) and 1 or 0
local purged = redis.call('ZSCORE', KEYS[3], self) and 1 or 0
return { lost, purging, purged, claimed }
`;

/** A claimed instance is purged: off the claim list, onto the purged list. */
const PURGED = `
local t = redis.call('TIME')
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000, ARGV[1])
`;

/**
 * One step on an instance's index (`indexKey`): field = a room or a user, value = how many of the
 * instance's connections are there; at 0 the field goes. The purge reads the fields.
 */
export const INDEX_COUNT = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return n
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardLease(
      live: string,
      dead: string,
      purged: string,
      self: string,
      ttlMs: number,
      claimMs: number,
      keepMs: number,
    ): Result<[number, number, number, string[]], Context>;
    switchboardPurged(dead: string, purged: string, id: string): Result<unknown, Context>;
  }
}

/** How long a purged instance is remembered, so that it knows it was purged if it comes back. */
const KEEP_PURGED_MS = 3600_000;

/**
 * What this instance does after it lost its lease: write back its state; see `onResync`.
 * `announce` is true when another instance purged this one (and told everyone its members left).
 */
export type ResyncListener = (options: { announce: boolean }) => Promise<void>;
/** What this instance does for an instance it claimed: remove the dead one's entries. */
export type PurgeListener = (deadInstanceId: string) => Promise<void>;

/**
 * This instance's membership of the cluster, and what follows from it (docs/operations.md, Cluster mode).
 *
 * - Every `WS_HEARTBEAT_MS / 4` the instance renews its lease, with a lifetime of 1.5 ×
 *   `WS_HEARTBEAT_MS`, in one sorted set of every instance.
 * - The same step claims instances whose lease expired (a SIGKILL, a partition): exactly one
 *   live instance claims each, runs the `onPurge` listeners (presence entries removed,
 *   `presence.left` announced, registry entries dropped) and marks it purged. A dead instance is
 *   gone from every list within 2 × `WS_HEARTBEAT_MS`.
 * - When the renewal finds this instance's own lease missing or expired, Redis lost its data (a
 *   restart without persistence, a failover that lost writes) or this instance was cut off long
 *   enough to be declared dead. Either way it runs the `onResync` listeners, which write back
 *   what only this instance knows (its connections, presence entries and the revocations it has
 *   seen), once nobody is still purging it. `synced` is false from any Redis outage until that is
 *   done: readiness and ticket issuing wait for it. `onRecovered` listeners run each time it
 *   becomes true again, to finish what failed during the outage.
 * - A clean shutdown `release`s the lease once the instance removed its entries; an instance
 *   that could not is purged like a dead one.
 */
export class InstanceLease implements BeforeApplicationShutdown {
  private readonly logger = new Logger(InstanceLease.name);
  private readonly timer: NodeJS.Timeout;
  private readonly resyncListeners = new Set<ResyncListener>();
  private readonly purgeListeners = new Set<PurgeListener>();
  private readonly recoveredListeners = new Set<() => void>();
  private readonly keys: { live: string; dead: string; purged: string };
  readonly ttlMs: number;
  /** Verified since the last outage: the lease was held, or the write-back is done. */
  private verified = false;
  /** The lease was lost: a write-back is due. */
  private resyncDue = false;
  /** Another instance purged (or is purging) this one: others saw its members leave. */
  private wasPurged = false;
  private renewing: Promise<void> | null = null;
  private stopped = false;

  /**
   * @param claimMs how long a claimer has to purge a dead instance before another instance
   *   claims it again @default 30000
   */
  constructor(
    private readonly redis: RedisConnections,
    readonly instanceId: string,
    heartbeatMs: number,
    private readonly claimMs = 30_000,
  ) {
    this.ttlMs = Math.floor(1.5 * heartbeatMs);
    // {instances} is a hash tag: the three keys share a slot, as one script touches them all.
    const base = redis.key('{instances}');
    this.keys = { live: `${base}:live`, dead: `${base}:dead`, purged: `${base}:purged` };
    redis.command.defineCommand('switchboardLease', { numberOfKeys: 3, lua: RENEW });
    redis.command.defineCommand('switchboardPurged', { numberOfKeys: 2, lua: PURGED });
    this.timer = setInterval(() => void this.renew(), Math.max(25, Math.floor(heartbeatMs / 4)));
    this.timer.unref();
    redis.onUp(() => void this.renew());
    redis.onDown(() => (this.verified = false));
  }

  /** Redis is up, the lease is held, and this instance's state is in Redis. */
  get synced(): boolean {
    return this.verified && this.redis.up;
  }

  /**
   * Redis answers commands, but the lease is not verified yet or the write-back is not done: what
   * Redis holds may lack this instance's state (revocations above all), so nothing is decided on it.
   */
  get restoring(): boolean {
    return this.redis.command.status === 'ready' && !this.verified;
  }

  /** The key of an instance's index of `kind` (its rooms, its users), removed when it is purged. */
  static indexKey(redis: RedisConnections, instanceId: string, kind: string): string {
    return redis.key('instance', instanceId, kind);
  }

  /** Registers a write-back step, run after the lease was lost; see the class comment. */
  onResync(listener: ResyncListener): void {
    this.resyncListeners.add(listener);
  }

  /** Registers a clean-up step, run for each dead instance this one claims. */
  onPurge(listener: PurgeListener): void {
    this.purgeListeners.add(listener);
  }

  /** Registers a step run each time `synced` turns true after an outage or a write-back. */
  onRecovered(listener: () => void): void {
    this.recoveredListeners.add(listener);
  }

  /** One renewal; concurrent calls share it. */
  renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = null));
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    if (this.stopped || this.redis.command.status !== 'ready') {
      return;
    }
    let answer: [number, number, number, string[]];
    try {
      answer = await this.redis.command.switchboardLease(
        this.keys.live,
        this.keys.dead,
        this.keys.purged,
        this.instanceId,
        this.ttlMs,
        this.claimMs,
        KEEP_PURGED_MS,
      );
    } catch (error) {
      this.logger.warn({ msg: 'instance lease not renewed', error: (error as Error).message });
      return;
    }
    const [lost, purging, purged, claimed] = answer;
    for (const id of claimed) {
      void this.purge(id);
    }
    if (lost === 1 && !this.resyncDue) {
      this.logger.warn({
        msg: 'instance lease lost: Redis lost its data, or this instance was cut off too long; writing state back',
      });
      this.resyncDue = true;
      this.verified = false;
    }
    if (!this.resyncDue) {
      this.markVerified();
      return;
    }
    this.wasPurged ||= purging === 1 || purged === 1;
    if (purging === 1) {
      // Another instance is still removing this one's entries: writing them back now could be
      // undone by it. The renewal above took the lease again, so nobody claims this one anew.
      return;
    }
    await this.resync();
  }

  private async resync(): Promise<void> {
    const announce = this.wasPurged;
    const results = await Promise.allSettled(
      [...this.resyncListeners].map((listener) => listener({ announce })),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      this.logger.warn({
        msg: 'state not written back yet; the next renewal retries',
        error: String((failed[0].reason as Error)?.message ?? failed[0].reason),
      });
      return;
    }
    if (this.wasPurged) {
      await this.redis.command
        .zrem(this.keys.purged, this.instanceId)
        .catch((error: Error) =>
          this.logger.warn({ msg: 'purge mark not cleared', error: error.message }),
        );
    }
    this.resyncDue = false;
    this.wasPurged = false;
    this.logger.log({ msg: 'state written back to Redis' });
    this.markVerified();
  }

  private markVerified(): void {
    if (this.verified) {
      return;
    }
    this.verified = true;
    this.recoveredListeners.forEach((listener) => listener());
  }

  private async purge(deadId: string): Promise<void> {
    try {
      for (const listener of this.purgeListeners) {
        await listener(deadId);
      }
      await this.redis.command.switchboardPurged(this.keys.dead, this.keys.purged, deadId);
      this.logger.log({ msg: 'purged a dead instance', instanceId: deadId });
    } catch (error) {
      // The claim lapses and another renewal (of any instance) claims the dead one again.
      this.logger.warn({
        msg: 'dead instance not purged; it will be claimed again',
        instanceId: deadId,
        error: (error as Error).message,
      });
    }
  }

  /**
   * Gives the lease up at a clean shutdown, once this instance removed its entries: nobody needs
   * to purge it then. Without a release, the lease expires and the instance is purged.
   */
  async release(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.renewing;
    await this.redis.command.zrem(this.keys.live, this.instanceId);
  }

  /** Stops renewing; the Redis connections close after this (`onApplicationShutdown`). */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.renewing;
  }
}
