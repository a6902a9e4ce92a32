import { Injectable, Module } from '@nestjs/common';
import type { SwitchboardSettings } from '@switchboard/nest';

/**
 * The application's own configuration service (a stand-in for @nestjs/config or a secret store):
 * Switchboard's settings come from it when the application boots.
 */
@Injectable()
export class Settings {
  switchboard(): SwitchboardSettings {
    const env = process.env;
    return {
      jwtSecret: env.APP_JWT_SECRET,
      allowedOrigins: env.APP_ORIGINS?.split(',') ?? [],
      redisUrl: env.APP_REDIS_URL,
      broadcastApiKey: env.APP_BROADCAST_KEY,
      devAuth: env.APP_DEV_AUTH === 'true',
      shutdownDrainMs: 500,
    };
  }
}

@Module({ providers: [Settings], exports: [Settings] })
export class SettingsModule {}
