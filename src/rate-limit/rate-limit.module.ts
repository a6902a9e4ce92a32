import { Global, Module } from '@nestjs/common';
import { MemoryRateLimiter } from './memory-rate-limiter';
import { RateLimiter } from './rate-limiter.interface';

@Global()
@Module({
  providers: [{ provide: RateLimiter, useClass: MemoryRateLimiter }],
  exports: [RateLimiter],
})
export class RateLimitModule {}
