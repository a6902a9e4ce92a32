import { Controller, Get, Headers, Res, UnauthorizedException } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
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
    @Res() reply: FastifyReply,
  ): Promise<void> {
    if (this.token !== null && !bearerMatches(authorization, this.token)) {
      throw new UnauthorizedException('missing or wrong Authorization: Bearer <METRICS_TOKEN>');
    }
    const body = await this.metrics.registry.metrics();
    await reply
      .header('Content-Type', this.metrics.registry.contentType)
      .header('Cache-Control', 'no-store')
      .send(body);
  }
}
