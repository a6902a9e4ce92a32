import type { Result } from 'ioredis';
import type { RedisConnections } from '../redis/redis.connections';
import type { RateLimiter, RateLimitResult } from './rate-limiter.interface';

/** INCR, and the window's expiry on its first hit, in one atomic script. */
const HIT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return { count, redis.call('PTTL', KEYS[1]) }
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardHit(key: string, windowMs: number): Result<[number, number], Context>;
  }
}

/** Fixed-window counters in Redis, shared by every instance. */
export class RedisRateLimiter implements RateLimiter {
  constructor(private readonly redis: RedisConnections) {
    redis.command.defineCommand('switchboardHit', { numberOfKeys: 1, lua: HIT });
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    const [count, ttl] = await this.redis.run('rate-limit', (r) =>
      r.switchboardHit(this.redis.key('rl', key), windowMs),
    );
    return { count, allowed: count <= limit, resetInMs: ttl > 0 ? ttl : windowMs };
  }
}
