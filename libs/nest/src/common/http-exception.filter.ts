import { STATUS_CODES } from 'node:http';
import {
  type ArgumentsHost,
  Catch,
  HttpException,
  type HttpServer,
  HttpStatus,
  Logger,
  Optional,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { ErrorTracker } from '../errors/error-tracker';
import { NoopErrorTracker } from '../errors/noop-error-tracker';
import { BearerChallengeException, RetryableHttpException, StoreUnavailableError } from './errors';

/** Seconds a client should wait before retrying while a store is unreachable. */
const STORE_RETRY_AFTER_S = 2;

/**
 * Nest's default filter, plus `Retry-After` on retryable errors, `WWW-Authenticate` on a static
 * key's `401`, and `503` (instead of `500`) when
 * a shared store cannot be reached: those requests fail closed, and the client may retry.
 * It is on every Switchboard controller (and, in the standalone server, global). Fastify's own 4xx errors (a body too large or malformed, an unsupported content type) are
 * answered in the same shape as every other error, without the error log and stack trace Nest
 * gives an unknown exception. An unknown exception (a `500`) is also reported to `ErrorTracker`.
 */
@Catch()
export class HttpExceptionFilter extends BaseExceptionFilter {
  private readonly logger = new Logger(HttpExceptionFilter.name);

  /**
   * @param applicationRef the HTTP adapter, for a filter made with `new` (`useGlobalFilters`)
   * @param errors where a `500` is reported (injected on Switchboard's controllers) @default none
   */
  constructor(
    @Optional() applicationRef?: HttpServer,
    @Optional() private readonly errors: ErrorTracker = new NoopErrorTracker(),
  ) {
    super(applicationRef);
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') {
      super.catch(exception, host);
      return;
    }
    const response = host.switchToHttp().getResponse<unknown>();
    const adapter = this.httpAdapterHost?.httpAdapter ?? this.applicationRef;
    if (exception instanceof StoreUnavailableError) {
      this.logger.warn({ msg: 'request failed: store unavailable', store: exception.store });
      exception = new RetryableHttpException(
        HttpStatus.SERVICE_UNAVAILABLE,
        `${exception.message}; retry shortly`,
        STORE_RETRY_AFTER_S,
      );
    }
    const clientStatus = fastifyClientStatus(exception);
    if (clientStatus !== null) {
      exception = new HttpException(
        {
          statusCode: clientStatus,
          error: STATUS_CODES[clientStatus],
          message: (exception as Error).message,
        },
        clientStatus,
      );
    }
    if (exception instanceof RetryableHttpException) {
      adapter?.setHeader(response, 'Retry-After', String(exception.retryAfterS));
    }
    if (exception instanceof BearerChallengeException) {
      adapter?.setHeader(response, 'WWW-Authenticate', exception.challenge);
    }
    if (!(exception instanceof HttpException)) {
      const request = host.switchToHttp().getRequest<unknown>();
      this.errors.capture(exception, {
        component: 'http',
        route: routeOf(request as RouteRequest),
        userId: userOf(request as SessionRequest),
      });
    }
    super.catch(exception, host);
  }
}

/** A request under Fastify (`routeOptions`) or Express (`route`, `baseUrl`). */
interface RouteRequest {
  method?: string;
  url?: string;
  routeOptions?: { url?: string };
  route?: { path?: unknown };
  baseUrl?: string;
}

/** A request a Switchboard guard attached its session to (a host's `session` may be another). */
interface SessionRequest {
  session?: { userId?: unknown };
}

function userOf(request: SessionRequest): string | undefined {
  const userId = request.session?.userId;
  return typeof userId === 'string' ? userId : undefined;
}

/** The route as declared (`GET /auth/ws-ticket`): never the URL as sent, with its query. */
function routeOf(request: RouteRequest): string {
  const declared =
    request.routeOptions?.url ??
    (typeof request.route?.path === 'string'
      ? `${request.baseUrl ?? ''}${request.route.path}`
      : undefined);
  return `${request.method ?? ''} ${declared ?? (request.url ?? '').replace(/[?#].*$/s, '')}`;
}

/** The 4xx status Fastify gave an error of its own (body parsing, routing), else null. */
function fastifyClientStatus(exception: unknown): number | null {
  if (exception instanceof HttpException || !(exception instanceof Error)) {
    return null;
  }
  const { statusCode } = exception as { statusCode?: unknown };
  return typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500
    ? statusCode
    : null;
}
