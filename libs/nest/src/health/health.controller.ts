import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { RedisHealthIndicator } from './redis.health';
import { WsHealthIndicator } from './ws.health';
import { SwitchboardController } from '../common/switchboard-controller';

@ApiTags('operations')
@SwitchboardController()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ws: WsHealthIndicator,
    private readonly redis: RedisHealthIndicator,
  ) {}

  /** `200` while the process serves requests. Never depends on Redis. */
  @Get('live')
  @ApiOperation({ summary: 'Liveness: 200 while the process serves' })
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /** `200` when Redis (if configured) answers and the instance is not draining; `503` otherwise. */
  @Get('ready')
  @ApiOperation({
    summary: 'Readiness: 200 when Redis answers and the instance is not draining, else 503',
  })
  @HealthCheck()
  ready() {
    return this.health.check([
      () => this.ws.check(),
      ...(this.redis.configured ? [() => this.redis.check()] : []),
    ]);
  }
}
