import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Result } from 'ioredis';
import type { RedisConnections } from '../redis/redis.connections';

/**
 * One hit, atomically, on two keys of one hash slot: the hit counter of the window (KEYS[1],
 * expiring with the window) and the block (KEYS[2], set when the limit is passed, for
 * ARGV[3] ms). Answers { hits, ms left in the window, blocked, ms left of the block }.
 */
const HIT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local left = redis.call('PTTL', KEYS[1])
local blocked = redis.call('PTTL', KEYS[2])
if blocked <= 0 and hits > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  blocked = tonumber(ARGV[3])
end
return { hits, left, blocked > 0 and 1 or 0, math.max(blocked, 0) }
`;

/** What a storage answers (the package does not export the record type by name). */
type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardThrottle(
      hits: string,
      block: string,
      ttlMs: number,
      limit: number,
      blockMs: number,
    ): Result<[number, number, number, number], Context>;
  }
}

/**
 * `@nestjs/throttler`'s storage in Redis, so that a limit holds across every instance. Throttlers
 * not named in `clusterWide` count in this instance's memory (`local`): the dev-token limit keeps
 * working while Redis is down, as the dev tokens themselves do.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  constructor(
    private readonly redis: RedisConnections,
    private readonly clusterWide: ReadonlySet<string>,
    private readonly local: ThrottlerStorage,
  ) {
    redis.command.defineCommand('switchboardThrottle', { numberOfKeys: 2, lua: HIT });
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    if (!this.clusterWide.has(throttlerName)) {
      return this.local.increment(key, ttl, limit, blockDuration, throttlerName);
    }
    // {…} is a hash tag: both keys of one tracker share a slot.
    const base = this.redis.key('rl', 'http', throttlerName, `{${key}}`);
    const [totalHits, leftMs, blocked, blockLeftMs] = await this.redis.run('rate-limit', (r) =>
      r.switchboardThrottle(base, `${base}:blocked`, ttl, limit, blockDuration),
    );
    return {
      totalHits,
      timeToExpire: Math.max(1, Math.ceil(leftMs / 1000)),
      isBlocked: blocked === 1,
      timeToBlockExpire: Math.ceil(blockLeftMs / 1000),
    };
  }
}
