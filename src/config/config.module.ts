import { type DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig } from './app-config';
import { Instance } from './instance';

/** Makes the boot-time configuration (`AppConfig`) and this process's `Instance` injectable everywhere. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: AppConfig, useValue: config }, Instance],
      exports: [AppConfig, Instance],
    };
  }
}
