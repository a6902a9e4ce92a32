import type { TransportKind } from '@switchboard/protocol';

/** Where an error happened, sent with it as tags (each one that is set). */
export interface ErrorContext {
  /** The part of the server that failed: `http`, `host-gateway`, `message-router`, `redis`… */
  component: string;
  /** An HTTP route as declared (`GET /auth/ws-ticket`), never the URL a client sent. */
  route?: string;
  connectionId?: string;
  userId?: string;
  transport?: TransportKind;
  /** The client message type being handled. */
  messageType?: string;
}

/**
 * Where the server's unexpected errors go: a bug or an outage, never a client's mistake (a
 * refusal, a `4xx`). Inject it by this class; a host application may report through it too.
 *
 * With `SENTRY_DSN` (the `sentryDsn` option) set, errors go to Sentry, scrubbed of tickets, tokens,
 * cookies and query strings, through a Sentry client of Switchboard's own (a host's Sentry setup
 * is left alone). Unset, `capture` does nothing and nothing of Sentry is loaded.
 *
 * `capture` never throws and never waits: events leave in the background, and what is still
 * queued at shutdown is flushed for at most 2 s.
 */
export abstract class ErrorTracker {
  abstract capture(error: unknown, context: ErrorContext): void;
}
