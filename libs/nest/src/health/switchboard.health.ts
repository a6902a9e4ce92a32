import { Injectable } from '@nestjs/common';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { RedisHealthIndicator } from './redis.health';
import { WsHealthIndicator } from './ws.health';

/**
 * Switchboard's readiness for a host application's own terminus probes:
 *
 * ```ts
 * @Get('ready') @HealthCheck()
 * ready() { return this.health.check([() => this.switchboard.isHealthy()]); }
 * ```
 *
 * Down while the instance drains (the WebSocket side), and while Redis, if configured, does not
 * answer or this instance's state is being written back to it. The same checks as Switchboard's
 * own `GET /health/ready`.
 */
@Injectable()
export class SwitchboardHealthIndicator {
  constructor(
    private readonly ws: WsHealthIndicator,
    private readonly redis: RedisHealthIndicator,
  ) {}

  /** `{ ws: {...}, redis: {...} }`, each `up` or `down`, as terminus' indicators answer. */
  async isHealthy(): Promise<HealthIndicatorResult> {
    return { ...this.ws.check(), ...(await this.redis.check()) };
  }
}
