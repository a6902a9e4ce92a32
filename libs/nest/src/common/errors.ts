import { HttpException, HttpStatus, UnauthorizedException } from '@nestjs/common';

/** A shared store (tickets, limits, revocations, registry) could not be reached. */
export class StoreUnavailableError extends Error {
  constructor(
    readonly store: string,
    options?: { cause?: unknown },
  ) {
    super(`${store} store is unavailable`, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * An HTTP error that tells the client when to retry (`Retry-After`, in seconds; with
 * `retryAfterMs`, also in the body, to the millisecond).
 */
export class RetryableHttpException extends HttpException {
  constructor(
    status: HttpStatus.TOO_MANY_REQUESTS | HttpStatus.SERVICE_UNAVAILABLE,
    message: string,
    readonly retryAfterS: number,
    retryAfterMs?: number,
  ) {
    super(
      {
        statusCode: status,
        error:
          status === HttpStatus.TOO_MANY_REQUESTS ? 'Too Many Requests' : 'Service Unavailable',
        message,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      },
      status,
    );
  }
}

/** A `401` that names the scheme to use (`WWW-Authenticate: Bearer`): a static key was missing or wrong. */
export class BearerChallengeException extends UnauthorizedException {
  readonly challenge = 'Bearer';
}
