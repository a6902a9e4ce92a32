import { type ArgumentsHost, Catch, HttpStatus, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Response } from 'express';
import { RetryableHttpException, StoreUnavailableError } from './errors';

/** Seconds a client should wait before retrying while a store is unreachable. */
const STORE_RETRY_AFTER_S = 2;

/**
 * Nest's default filter, plus `Retry-After` on retryable errors and `503` (instead of `500`) when
 * a shared store cannot be reached: those requests fail closed, and the client may retry.
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
    if (exception instanceof RetryableHttpException) {
      response.setHeader('Retry-After', String(exception.retryAfterS));
    }
    super.catch(exception, host);
  }
}
