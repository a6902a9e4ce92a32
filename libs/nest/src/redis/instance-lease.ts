import { type BeforeApplicationShutdown, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Result } from 'ioredis';
import { Lease, type PurgeListener, type ResyncListener } from './lease';
import type { RedisConnections } from './redis.connections';

/**
 * One round of the lease, atomically, on the keys of one hash slot (KEYS[1..6]: live, dead, purged,
 * generation, restoring, restored). Renew this instance's lease (KEYS[1], a sorted set scored by
 * expiry in Redis time), claim the instances whose lease expired (moved to KEYS[2], scored by when
 * the claim lapses, and claimed again if the claimer died before it finished), and forget purged
 * instances (KEYS[3]) after ARGV[4] ms.
 *
 * The data generation (KEYS[4]) is written once, when it is missing, and lives as long as the data:
 * an instance that knew another generation (ARGV[5]) sees that Redis lost its data, and enters
 * itself in the restore barrier (KEYS[5], scored by when its entry lapses) until its write-back is
 * done. An instance that knew none (a first renewal) cannot tell a first boot from a loss whose
 * witnesses have not reconnected yet: if it writes the generation while Redis itself started less
 * than ARGV[8] ms ago (as after a restart), the barrier waits that long for them.
 *
 * Answers: whether this instance's lease was lost (absent or expired), whether this instance is
 * itself being purged or was purged, the ids it claimed now, the generation, whether this instance
 * saw the data lost now, how many entries hold the barrier and how many of them are witnesses of a
 * loss, and the live instances.
 */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local self, ttl, claim, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local known, candidate, inSync, allowance = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local generation = redis.call('GET', KEYS[4])
local created = not generation
if created then
  generation = candidate
  redis.call('SET', KEYS[4], generation)
  redis.call('DEL', KEYS[6])
end
local loss = (known ~= '' and known ~= generation) and 1 or 0
if loss == 1 then
  redis.call('ZADD', KEYS[5], 'NX', now + claim, self)
elseif created then
  local info = redis.pcall('INFO', 'server')
  local uptime = type(info) == 'string' and tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
  local reconnected = now - uptime * 1000 + allowance
  if reconnected > now then
    redis.call('ZADD', KEYS[5], reconnected, '~reconnect')
  end
elseif inSync == '1' then
  redis.call('ZREM', KEYS[5], self)
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
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
local barrier = redis.call('ZCARD', KEYS[5])
local witnesses = barrier - (redis.call('ZSCORE', KEYS[5], '~reconnect') and 1 or 0)
return { lost, purging, purged, claimed, generation, loss, barrier, witnesses, redis.call('ZRANGE', KEYS[1], 0, -1) }
`;

/**
 * A witness of the loss makes the barrier wait for the instances it knew to be live (ARGV[2..]),
 * each for at most ARGV[1] ms, unless it has written back already (KEYS[2]). Answers the
 * barrier's entries.
 */
const AWAIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then
    redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[1]), ARGV[i])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`;

/** A witness's write-back is done: off the barrier, onto the restored set. Answers the entries left. */
const RESTORED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`;

/**
 * A clean shutdown gives the lease up (KEYS[1]) and leaves the barrier (KEYS[3]). The last instance
 * to leave takes the generation (KEYS[2]) and the barrier with it: no instance holds state then,
 * so there is no loss to tell, and a cluster that stopped leaves nothing behind.
 */
const RELEASE = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
end
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
      generation: string,
      restoring: string,
      restored: string,
      self: string,
      ttlMs: number,
      claimMs: number,
      keepMs: number,
      knownGeneration: string,
      candidateGeneration: string,
      inSync: '0' | '1',
      reconnectMs: number,
    ): Result<
      [number, number, number, string[], string, number, number, number, string[]],
      Context
    >;
    switchboardAwait(
      restoring: string,
      restored: string,
      waitMs: number,
      ...ids: string[]
    ): Result<number, Context>;
    switchboardRestored(
      restoring: string,
      restored: string,
      self: string,
      keepMs: number,
    ): Result<number, Context>;
    switchboardRelease(
      live: string,
      generation: string,
      restoring: string,
      restored: string,
      self: string,
    ): Result<unknown, Context>;
    switchboardPurged(dead: string, purged: string, id: string): Result<unknown, Context>;
  }
}

/** How long a purged instance is remembered, so that it knows it was purged if it comes back. */
const KEEP_PURGED_MS = 3600_000;
/**
 * How long after Redis started the instances that held state may take to reconnect and renew:
 * their connections retry at least every 1.1 s, and renew as soon as both are ready.
 */
const RECONNECT_ALLOWANCE_MS = 2_000;
/** How often the barrier is read while it holds, so that tickets resume soon after it lifts. */
const BARRIER_POLL_MS = 100;

/** Why a write-back is due: a first renewal, a lease lost to a partition, or Redis lost its data. */
type ResyncCause = 'boot' | 'cut-off' | 'data-loss';

/**
 * This instance's membership of the cluster, and what follows from it: the `Lease` in cluster mode
 * (docs/operations.md, Cluster mode).
 *
 * - Every `WS_HEARTBEAT_MS / 4` the instance renews its lease, with a lifetime of 1.5 ×
 *   `WS_HEARTBEAT_MS`, in one sorted set of every instance.
 * - The same step claims instances whose lease expired (a SIGKILL, a partition): exactly one
 *   live instance claims each, runs the `onPurge` listeners (presence entries removed, the rooms
 *   told who left in their next batch, registry entries dropped) and marks it purged. A dead
 *   instance is gone from every list within 2 × `WS_HEARTBEAT_MS`.
 * - When the renewal finds this instance's own lease missing or expired, it runs the `onResync`
 *   listeners, which learn what Redis holds and write back what only this instance knows (its
 *   connections, presence entries and the revocations it has seen), once nobody is still purging
 *   it. At a first renewal that is routine; later it means that this instance was cut off long
 *   enough to be declared dead, or that Redis lost its data (a restart without persistence, a
 *   failover that lost writes), which the data generation tells apart: a key written at first boot
 *   that lives as long as the data.
 * - After a data loss, no instance decides anything on what Redis holds until every instance that
 *   held state has written it back: a freshly booted instance knows no revocation, and would issue
 *   a ticket to a revoked session. Each instance that sees the generation changed enters the
 *   restore barrier until its write-back is done, and waits there for the instances it knew (each
 *   for one lease lifetime at most, `RECONNECT_ALLOWANCE_MS` at least); an instance that writes
 *   the generation while Redis has just started waits `RECONNECT_ALLOWANCE_MS` for instances
 *   still reconnecting. Every entry lapses (its own after `claimMs`), so no cluster stays locked. A witness that comes back later raises
 *   the barrier again, and its write-back closes the sockets of the sessions it restores.
 * - `synced` is false from any Redis outage until this instance's write-back and the barrier are
 *   done; `restoring` is true meanwhile while Redis answers: readiness, tickets and handshakes wait
 *   for it. `onRecovered` listeners run each time this instance's own state is back, to finish what
 *   failed during the outage.
 * - A clean shutdown `release`s the lease once the instance removed its entries (the last one
 *   takes the generation along); an instance that could not is purged like a dead one.
 */
export class InstanceLease extends Lease implements BeforeApplicationShutdown {
  private readonly logger = new Logger(InstanceLease.name);
  private readonly timer: NodeJS.Timeout;
  private poll: NodeJS.Timeout | undefined;
  private readonly resyncListeners = new Set<ResyncListener>();
  private readonly purgeListeners = new Set<PurgeListener>();
  private readonly recoveredListeners = new Set<() => void>();
  private readonly keys: {
    live: string;
    dead: string;
    purged: string;
    generation: string;
    restoring: string;
    restored: string;
  };
  readonly ttlMs: number;
  /** Verified since the last outage: the lease was held, or the write-back is done. */
  private verified = false;
  /** The data generation this instance holds state of; '' before its first renewal. */
  private generation = '';
  /** The live instances at the last renewal: whom a loss makes the barrier wait for. */
  private peers: string[] = [];
  /** The restore barrier holds, as last read. */
  private barrier = false;
  /** Some instance saw the data lost (the barrier is more than a wait for reconnections). */
  private witnessed = false;
  /** The instances that the barrier is still to wait for, as this instance knew them. */
  private awaited: string[] = [];
  /** Why a write-back is due, if one is. */
  private resyncDue: ResyncCause | null = null;
  /** Counts the causes found, so that one found during a write-back is not forgotten. */
  private causes = 0;
  /** Another instance purged (or is purging) this one: others saw its members leave. */
  private wasPurged = false;
  private renewing: Promise<void> | null = null;
  private resyncing: Promise<void> | null = null;
  private stopped = false;

  /**
   * @param claimMs how long a claimer has to purge a dead instance before another instance
   *   claims it again, and how long a witness of a data loss holds the barrier at most
   *   @default 30000
   */
  constructor(
    private readonly redis: RedisConnections,
    readonly instanceId: string,
    heartbeatMs: number,
    private readonly claimMs = 30_000,
  ) {
    super();
    this.ttlMs = Math.floor(1.5 * heartbeatMs);
    // {instances} is a hash tag: the keys share a slot, as one script touches them all.
    const base = redis.key('{instances}');
    this.keys = {
      live: `${base}:live`,
      dead: `${base}:dead`,
      purged: `${base}:purged`,
      generation: `${base}:generation`,
      restoring: `${base}:restoring`,
      restored: `${base}:restored`,
    };
    redis.command.defineCommand('switchboardLease', { numberOfKeys: 6, lua: RENEW });
    redis.command.defineCommand('switchboardAwait', { numberOfKeys: 2, lua: AWAIT });
    redis.command.defineCommand('switchboardRestored', { numberOfKeys: 2, lua: RESTORED });
    redis.command.defineCommand('switchboardRelease', { numberOfKeys: 4, lua: RELEASE });
    redis.command.defineCommand('switchboardPurged', { numberOfKeys: 2, lua: PURGED });
    this.timer = setInterval(() => void this.renew(), Math.max(25, Math.floor(heartbeatMs / 4)));
    this.timer.unref();
    redis.onUp(() => void this.renew());
    redis.onDown(() => (this.verified = false));
  }

  /** Redis is up, the lease is held, this instance's state is in Redis, and the barrier is down. */
  get synced(): boolean {
    return this.verified && !this.barrier && this.redis.up;
  }

  /**
   * Redis answers commands, but the lease is not verified yet, this instance's write-back is not
   * done, or other instances' is not (the barrier): what Redis holds may lack revocations, so
   * nothing is decided on it.
   */
  get restoring(): boolean {
    return this.redis.command.status === 'ready' && (!this.verified || this.barrier);
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

  /** Registers a step run each time this instance's state is back in Redis after an outage. */
  onRecovered(listener: () => void): void {
    this.recoveredListeners.add(listener);
  }

  /** One renewal, and the write-back it started or found running; concurrent calls share it. */
  renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = null));
    // The write-back runs beside the renewals, so that the lease stays held however long it takes.
    return this.renewing.then(() => this.resyncing ?? undefined);
  }

  private async renewOnce(): Promise<void> {
    if (this.stopped || this.redis.command.status !== 'ready') {
      return;
    }
    let answer: [number, number, number, string[], string, number, number, number, string[]];
    try {
      answer = await this.redis.command.switchboardLease(
        this.keys.live,
        this.keys.dead,
        this.keys.purged,
        this.keys.generation,
        this.keys.restoring,
        this.keys.restored,
        this.instanceId,
        this.ttlMs,
        this.claimMs,
        KEEP_PURGED_MS,
        this.generation,
        randomUUID(),
        this.verified && this.resyncDue === null ? '1' : '0',
        RECONNECT_ALLOWANCE_MS,
      );
    } catch (error) {
      this.logger.warn({ msg: 'instance lease not renewed', error: (error as Error).message });
      return;
    }
    const [lost, purging, purged, claimed, generation, loss, barrier, witnesses, live] = answer;
    for (const id of claimed) {
      void this.purge(id);
    }
    // Whom a loss waits for: the instances live before it, not the ones that came back since.
    const peers = this.peers;
    this.peers = live;
    const first = this.generation === '';
    this.generation = generation;
    if (loss === 1) {
      this.logger.warn({
        msg: 'Redis lost its data: writing this instance’s state back; no instance issues tickets until every instance has',
      });
      this.due('data-loss');
      this.awaited = peers;
    } else if (lost === 1 && this.resyncDue === null) {
      if (!first) {
        this.logger.warn({
          msg: 'instance lease lost: this instance was cut off too long; writing its state back',
        });
      }
      this.due(first ? 'boot' : 'cut-off');
    }
    this.observe(barrier, witnesses > 0);
    if (this.resyncDue === null) {
      this.markVerified();
      return;
    }
    this.wasPurged ||= purging === 1 || purged === 1;
    if (purging === 1) {
      // Another instance is still removing this one's entries: writing them back now could be
      // undone by it. The renewal above took the lease again, so nobody claims this one anew.
      return;
    }
    this.resyncing ??= this.resync().finally(() => (this.resyncing = null));
  }

  private due(cause: ResyncCause): void {
    // A data loss outranks a cut-off: what the write-back then ends in depends on it.
    if (this.resyncDue !== 'data-loss') {
      this.resyncDue = cause;
    }
    this.causes++;
    this.verified = false;
  }

  /**
   * Takes the barrier's entry count as read (and whether a witness of a loss holds it); while it
   * holds, reads it again soon.
   */
  private observe(entries: number, witnessed = this.witnessed): void {
    const barrier = entries > 0;
    if (barrier && witnessed && !this.witnessed) {
      this.logger.log({
        msg: 'restore barrier up: instances are writing their state back after Redis lost its data; no tickets nor handshakes until they have',
      });
    } else if (!barrier && this.witnessed) {
      this.logger.log({ msg: 'restore barrier down: every instance has written its state back' });
    }
    this.barrier = barrier;
    this.witnessed = barrier && witnessed;
    if (barrier && this.poll === undefined && !this.stopped) {
      this.poll = setTimeout(() => {
        this.poll = undefined;
        void this.renew();
      }, BARRIER_POLL_MS);
      this.poll.unref();
    }
  }

  private async resync(): Promise<void> {
    const cause = this.resyncDue;
    const causes = this.causes;
    const announce = this.wasPurged;
    if (cause === 'data-loss' && this.awaited.length > 0) {
      try {
        this.observe(
          await this.redis.command.switchboardAwait(
            this.keys.restoring,
            this.keys.restored,
            Math.max(this.ttlMs, RECONNECT_ALLOWANCE_MS),
            ...this.awaited,
          ),
        );
        this.awaited = [];
      } catch (error) {
        this.logger.warn({
          msg: 'restore barrier not extended to the other instances; the next renewal retries',
          error: (error as Error).message,
        });
        return;
      }
    }
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
    if (causes !== this.causes) {
      return; // lost again meanwhile: the next renewal writes back once more
    }
    try {
      if (announce) {
        await this.redis.command.zrem(this.keys.purged, this.instanceId);
      }
      if (cause === 'data-loss') {
        this.observe(
          await this.redis.command.switchboardRestored(
            this.keys.restoring,
            this.keys.restored,
            this.instanceId,
            this.claimMs,
          ),
        );
      }
    } catch (error) {
      this.logger.warn({
        msg: 'write-back not recorded; the next renewal retries',
        error: (error as Error).message,
      });
      return;
    }
    this.resyncDue = null;
    this.wasPurged = false;
    if (cause !== 'boot') {
      this.logger.log({ msg: 'state written back to Redis' });
    }
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
   * to purge it then, nor wait for its write-back. Without a release, the lease expires and the
   * instance is purged.
   */
  async release(): Promise<void> {
    await this.stop();
    await this.redis.command.switchboardRelease(
      this.keys.live,
      this.keys.generation,
      this.keys.restoring,
      this.keys.restored,
      this.instanceId,
    );
  }

  /** Stops renewing; the Redis connections close after this (`onApplicationShutdown`). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.poll);
    await this.renewing;
    await this.resyncing;
  }
}
