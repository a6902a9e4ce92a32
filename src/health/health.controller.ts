import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { RedisHealthIndicator } from './redis.health';
import { WsHealthIndicator } from './ws.health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ws: WsHealthIndicator,
    private readonly redis: RedisHealthIndicator,
  ) {}

  /** `200` while the process serves requests. Never depends on Redis. */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /** `200` when Redis (if configured) answers and the instance is not draining; `503` otherwise. */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      () => this.ws.check(),
      ...(this.redis.configured ? [() => this.redis.check()] : []),
    ]);
  }
}
