import { Global, Module } from '@nestjs/common';
import { storeProvider } from '../redis/redis.module';
import { MemoryRateLimiter } from './memory-rate-limiter.store';
import { RateLimiter } from './rate-limiter.interface';
import { RedisRateLimiter } from './redis-rate-limiter.store';

@Global()
@Module({
  providers: [
    storeProvider<RateLimiter>(
      RateLimiter,
      () => new MemoryRateLimiter(),
      (redis) => new RedisRateLimiter(redis),
    ),
  ],
  exports: [RateLimiter],
})
export class RateLimitModule {}
