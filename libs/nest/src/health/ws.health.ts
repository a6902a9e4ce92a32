import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Hub } from '../core/hub';

/** `ws: { status, connections, draining }`: down while the instance drains. */
@Injectable()
export class WsHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly hub: Hub,
  ) {}

  check() {
    const session = this.indicators.check('ws');
    const data = { connections: this.hub.size, draining: this.hub.draining };
    return this.hub.draining ? session.down(data) : session.up(data);
  }
}
