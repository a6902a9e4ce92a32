import { type DynamicModule, Module } from '@nestjs/common';
import { BroadcastController } from './broadcast.controller';
import { BroadcastService } from './broadcast.service';

/** `BroadcastService` for any module, and `POST /api/broadcast` for other backends. */
@Module({})
export class BroadcastModule {
  /**
   * @param options.httpApi whether `POST /api/broadcast` exists: only with a key (without one the
   *   router answers `404`, as for any unknown route)
   */
  static forRoot(options: { httpApi: boolean }): DynamicModule {
    return {
      module: BroadcastModule,
      controllers: options.httpApi ? [BroadcastController] : [],
      providers: [BroadcastService],
      exports: [BroadcastService],
    };
  }
}
