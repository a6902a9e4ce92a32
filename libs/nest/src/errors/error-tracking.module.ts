import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { ErrorTracker } from './error-tracker';
import { NoopErrorTracker } from './noop-error-tracker';
import { loadSentry, SentryErrorTracker } from './sentry-error-tracker';

/**
 * `ErrorTracker`, injectable everywhere: Sentry's with `SENTRY_DSN` set, else one that does
 * nothing. `@sentry/nestjs` is imported only in the first case.
 */
@Global()
@Module({
  providers: [
    {
      provide: ErrorTracker,
      inject: [AppConfig],
      useFactory: async (config: AppConfig): Promise<ErrorTracker> =>
        config.sentryDsn === undefined
          ? new NoopErrorTracker()
          : new SentryErrorTracker(await loadSentry(), config),
    },
  ],
  exports: [ErrorTracker],
})
export class ErrorTrackingModule {}
