import { ErrorTracker } from './error-tracker';

/** Without `SENTRY_DSN`: errors are only logged, where they happen. */
export class NoopErrorTracker extends ErrorTracker {
  capture(): void {}
}
