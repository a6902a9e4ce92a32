import { type DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig } from './app-config';
import { Clock } from './clock';
import { Instance } from './instance';

/**
 * Makes the boot-time configuration (`AppConfig`), this process's `Instance` and the `Clock`
 * injectable everywhere.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig, clock = new Clock()): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: AppConfig, useValue: config },
        { provide: Clock, useValue: clock },
        Instance,
      ],
      exports: [AppConfig, Clock, Instance],
    };
  }
}
