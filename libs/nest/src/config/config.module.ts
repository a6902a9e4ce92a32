import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { AppConfig } from './app-config';
import { Clock } from './clock';
import { Instance } from './instance';

/**
 * Makes the boot-time configuration (`AppConfig`), this process's `Instance` and the `Clock`
 * injectable everywhere. The configuration is a value (`forRoot`) or comes from a provider the
 * caller gives (`SwitchboardModule.forRootAsync`).
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(
    config: AppConfig | Provider<AppConfig>,
    clock = new Clock(),
    imports: DynamicModule['imports'] = [],
  ): DynamicModule {
    return {
      module: ConfigModule,
      imports,
      providers: [
        config instanceof AppConfig ? { provide: AppConfig, useValue: config } : config,
        { provide: Clock, useValue: clock },
        Instance,
      ],
      exports: [AppConfig, Clock, Instance],
    };
  }
}
