import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { RedisHealthIndicator } from './redis.health';
import { WsHealthIndicator } from './ws.health';

@Module({
  // Readiness failures are expected (drain, Redis outage) and answered with 503; no error logs.
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [WsHealthIndicator, RedisHealthIndicator],
})
export class HealthModule {}
