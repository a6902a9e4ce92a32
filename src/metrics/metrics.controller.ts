import { Controller, Get, Headers, Res, UnauthorizedException } from '@nestjs/common';
import type { Response } from 'express';
import { bearerMatches } from '../common/bearer';
import { AppConfig } from '../config/app-config';
import { MetricsService } from './metrics.service';

/** `GET /metrics` in the Prometheus text format; behind `METRICS_TOKEN` when it is set. */
@Controller('metrics')
export class MetricsController {
  private readonly token: Buffer | null;

  constructor(
    private readonly metrics: MetricsService,
    config: AppConfig,
  ) {
    this.token = config.metricsToken ? Buffer.from(config.metricsToken) : null;
  }

  @Get()
  async scrape(
    @Headers('authorization') authorization: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    if (this.token !== null && !bearerMatches(authorization, this.token)) {
      throw new UnauthorizedException('missing or wrong Authorization: Bearer <METRICS_TOKEN>');
    }
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    // end(), not send(): Express would add a charset to Prometheus' exact content type.
    res.end(await this.metrics.registry.metrics());
  }
}
