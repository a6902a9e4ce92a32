import { Controller, Get, Header, Headers, UnauthorizedException } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Registry } from 'prom-client';
import { HttpErrorBody } from '../common/http-error.dto';
import { bearerMatches } from '../common/bearer';
import { AppConfig } from '../config/app-config';
import { MetricsService } from './metrics.service';
import { SwitchboardController } from '../common/switchboard-controller';

/** `GET /metrics` in the Prometheus text format; behind `METRICS_TOKEN` when it is set. */
@ApiTags('operations')
@SwitchboardController()
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
  @ApiOperation({ summary: 'Prometheus metrics (text format)' })
  @ApiBearerAuth('metrics-token')
  @ApiOkResponse({
    description: 'The Prometheus text exposition format',
    content: { 'text/plain': { schema: { type: 'string' } } },
  })
  @ApiUnauthorizedResponse({
    description: 'METRICS_TOKEN is set and was not sent',
    type: HttpErrorBody,
  })
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  async scrape(@Headers('authorization') authorization: string | undefined): Promise<string> {
    if (this.token !== null && !bearerMatches(authorization, this.token)) {
      throw new UnauthorizedException('missing or wrong Authorization: Bearer <METRICS_TOKEN>');
    }
    return this.metrics.registry.metrics();
  }
}
