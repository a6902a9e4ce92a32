import { STATUS_CODES } from 'node:http';
import { type ArgumentsHost, Catch, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Response } from 'express';
import { RetryableHttpException, StoreUnavailableError } from './errors';

/** Seconds a client should wait before retrying while a store is unreachable. */
const STORE_RETRY_AFTER_S = 2;

/**
 * Nest's default filter, plus `Retry-After` on retryable errors and `503` (instead of `500`) when
 * a shared store cannot be reached: those requests fail closed, and the client may retry. The
 * body parser's own 4xx errors (a body too large, a bad charset) are answered in the same shape
 * as every other error, without the error log and stack trace Nest gives an unknown exception.
 */
@Catch()
export class HttpExceptionFilter extends BaseExceptionFilter {
  private readonly logger = new Logger(HttpExceptionFilter.name);

  override catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') {
      super.catch(exception, host);
      return;
    }
    const response = host.switchToHttp().getResponse<Response>();
    if (exception instanceof StoreUnavailableError) {
      this.logger.warn({ msg: 'request failed: store unavailable', store: exception.store });
      exception = new RetryableHttpException(
        HttpStatus.SERVICE_UNAVAILABLE,
        `${exception.message}; retry shortly`,
        STORE_RETRY_AFTER_S,
      );
    }
    const clientStatus = bodyParserStatus(exception);
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
      response.setHeader('Retry-After', String(exception.retryAfterS));
    }
    super.catch(exception, host);
  }
}

/** The 4xx status of an error from the body parser (`http-errors`, `expose: true`), else null. */
function bodyParserStatus(exception: unknown): number | null {
  if (exception instanceof HttpException || typeof exception !== 'object' || exception === null) {
    return null;
  }
  const { status, expose } = exception as { status?: unknown; expose?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true
    ? status
    : null;
}
