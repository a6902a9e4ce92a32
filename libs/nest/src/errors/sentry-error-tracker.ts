import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import type * as Sentry from '@sentry/nestjs';
import type { NodeClient, Scope } from '@sentry/nestjs';
import { ANONYMOUS_COOKIE, type AppConfig } from '../config/app-config';
import { ConfigError } from '../config/config.error';
import { type ErrorContext, ErrorTracker } from './error-tracker';
import { scrubBreadcrumb, scrubEvent } from './sentry-scrub';

export type SentrySdk = typeof Sentry;

/** How long shutdown waits for the events still queued. */
const FLUSH_TIMEOUT_MS = 2_000;

// Read at run time: the package's own manifest (beside src/ and dist/ alike), not compiled in.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

/** The release every event carries. */
export const RELEASE = `@switchboard/nest@${version}`;

/**
 * Loads `@sentry/nestjs`, an optional peer dependency: only when `SENTRY_DSN` is set.
 * @throws ConfigError naming SENTRY_DSN and the package, when it is not installed
 */
export async function loadSentry(
  load: () => Promise<SentrySdk> = () => import('@sentry/nestjs'),
): Promise<SentrySdk> {
  try {
    return await load();
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (
      code === 'MODULE_NOT_FOUND' &&
      typeof message === 'string' &&
      message.includes("'@sentry/nestjs'")
    ) {
      throw new ConfigError(
        'SENTRY_DSN',
        'is set, but @sentry/nestjs is not installed: npm install @sentry/nestjs (or unset SENTRY_DSN)',
      );
    }
    throw error;
  }
}

/**
 * Errors to Sentry through a client of Switchboard's own, bound to its own scope: nothing global
 * is installed (no `Sentry.init`, no process handlers, no OpenTelemetry, no patched modules), so
 * a host application's own Sentry, if any, is left as it was and never sees these events.
 */
export class SentryErrorTracker extends ErrorTracker implements OnApplicationShutdown {
  private readonly logger = new Logger(SentryErrorTracker.name);
  private readonly client: NodeClient;
  private readonly scope: Scope;

  constructor(sentry: SentrySdk, config: AppConfig) {
    super();
    const dsn = config.sentryDsn ?? '';
    const cookies = [
      ANONYMOUS_COOKIE,
      ...(config.authCookie === undefined ? [] : [config.authCookie]),
    ];
    this.client = new sentry.NodeClient({
      dsn,
      release: RELEASE,
      environment: config.nodeEnv,
      sendDefaultPii: false,
      // A client built by hand has no default integrations (`NodeClientOptions` has no
      // `defaultIntegrations`: only `Sentry.init` adds them, with their global handlers and
      // patches). These few add context to an event and patch nothing of the process.
      integrations: [
        sentry.dedupeIntegration(),
        sentry.linkedErrorsIntegration(),
        sentry.nodeContextIntegration(),
      ],
      // Client reports would add a timer and a `beforeExit` listener to the host's process.
      sendClientReports: false,
      transport: sentry.makeNodeTransport,
      stackParser: sentry.defaultStackParser,
      beforeSend: (event) => scrubEvent(event, cookies),
      beforeBreadcrumb: (breadcrumb) => scrubBreadcrumb(breadcrumb, cookies),
    });
    this.scope = new sentry.Scope();
    this.scope.setClient(this.client);
    this.client.init();
    this.logger.log({ msg: 'errors are reported to Sentry', host: new URL(dsn).host });
  }

  capture(error: unknown, context: ErrorContext): void {
    const scope = this.scope.clone();
    for (const [tag, value] of Object.entries(tags(context))) {
      scope.setTag(tag, value);
    }
    scope.captureException(error);
  }

  // At the very end of shutdown, so that what the drain and the stores' shutdown hit still leaves.
  async onApplicationShutdown(): Promise<void> {
    if (!(await this.client.close(FLUSH_TIMEOUT_MS))) {
      this.logger.warn({ msg: 'Sentry events still queued at shutdown were dropped' });
    }
  }
}

/** The context's fields as Sentry tags, snake_case, those that are set. */
function tags(context: ErrorContext): Record<string, string> {
  const all: Record<string, string | undefined> = {
    component: context.component,
    route: context.route,
    connection_id: context.connectionId,
    user_id: context.userId,
    transport: context.transport,
    message_type: context.messageType,
  };
  return Object.fromEntries(
    Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}
