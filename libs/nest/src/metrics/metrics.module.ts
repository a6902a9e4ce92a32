import { type DynamicModule, Global, Module } from '@nestjs/common';
import { register, type Registry } from 'prom-client';
import { MetricsController } from './metrics.controller';
import { METRICS_REGISTRY, MetricsService } from './metrics.service';

@Global()
@Module({})
export class MetricsModule {
  /**
   * @param options.registry where the metrics go: the host's (prom-client's global `register` by
   *   default)
   * @param options.route whether `GET /metrics` is served here (a host may serve its registry itself)
   */
  static forRoot(options: { registry?: Registry; route: boolean }): DynamicModule {
    return {
      module: MetricsModule,
      controllers: options.route ? [MetricsController] : [],
      providers: [
        { provide: METRICS_REGISTRY, useValue: options.registry ?? register },
        MetricsService,
      ],
      exports: [MetricsService],
    };
  }
}
