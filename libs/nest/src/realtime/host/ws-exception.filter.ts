import { type ArgumentsHost, Catch, HttpException, HttpStatus } from '@nestjs/common';
import type { WsExceptionFilter } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { ErrorCode } from '@switchboard/protocol';
import { StoreUnavailableError } from '../../common/errors';
import { BroadcastUnavailableError } from '../../core/broker/broker.interface';
import { ConnectionClosedError } from '../../core/connection';
import { ClientError } from '../messages/client-error';
import { SwitchboardSocket } from './switchboard-socket';

/** Nest's message when a guard answers false. */
const FORBIDDEN_MESSAGE = 'Forbidden resource';
/** What a host may put in `WsException({ code })`: a snake_case word. */
const HOST_CODE = /^[a-z][a-z0-9_]{0,39}$/;
/** How long a client should wait while a store is unreachable (as for built-in types). */
const UNAVAILABLE_RETRY_MS = 2_000;
/** `retryAfterMs` of a host's 429 or 503, which says no time of its own. */
const HOST_RETRY_AFTER_MS = 1_000;

/**
 * Turns what a host's `@SubscribeMessage()` handler, guard or pipe threw into an `error` frame
 * answering the message (its `id` echoed); the socket stays open. Switchboard puts it on every
 * host gateway, after the gateway's own filters: a filter of the host's that catches the
 * exception first still has the last word.
 *
 * - `WsException('text')` → `rejected`; `WsException({ code, message, details })` → that code.
 * - A guard that answers false → `forbidden`.
 * - `HttpException`: 400 (a `ValidationPipe`'s answer) → `validation_failed` with
 *   `details.messages`; 401 and 403 → `forbidden`; 429 → `rate_limited`; 503 → `unavailable`;
 *   other 4xx → `rejected` with `details.status`.
 * - Switchboard's own refusals (e.g. from `socket.join(room)`) keep their code; a store outage is
 *   `unavailable`.
 * - Anything else → `internal_error`, logged with its stack and reported to `ErrorTracker`: a
 *   bug, not the client's fault.
 */
@Catch()
export class SwitchboardWsExceptionFilter implements WsExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const socket = host.switchToWs().getClient<unknown>();
    if (!(socket instanceof SwitchboardSocket) || exception instanceof ConnectionClosedError) {
      return; // not a Switchboard connection, or the socket is gone: nothing to answer
    }
    const { code, message, details } = describe(exception);
    if (code === ErrorCode.InternalError) {
      // Through the socket: this one filter instance serves every application of the process.
      socket.failed(exception, host.switchToWs().getPattern());
      return;
    }
    socket.error(code, message, details);
  }
}

interface Described {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

function describe(exception: unknown): Described {
  if (exception instanceof ClientError) {
    // A refusal of Switchboard's own, e.g. from `socket.join(room)`.
    return { code: exception.code, message: exception.message, details: exception.details };
  }
  if (
    exception instanceof StoreUnavailableError ||
    exception instanceof BroadcastUnavailableError
  ) {
    return {
      code: ErrorCode.Unavailable,
      message: 'temporarily unavailable; retry shortly',
      details: { retryAfterMs: UNAVAILABLE_RETRY_MS },
    };
  }
  if (exception instanceof WsException) {
    const error = exception.getError();
    if (typeof error === 'string') {
      return error === FORBIDDEN_MESSAGE
        ? { code: ErrorCode.Forbidden, message: 'forbidden' }
        : { code: ErrorCode.Rejected, message: error };
    }
    const { code, message, details } = error as Record<string, unknown>;
    return {
      code:
        typeof code === 'string' && HOST_CODE.test(code) ? (code as ErrorCode) : ErrorCode.Rejected,
      message: typeof message === 'string' ? message : 'refused',
      ...(typeof details === 'object' && details !== null
        ? { details: details as Record<string, unknown> }
        : {}),
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus() as HttpStatus;
    const response = exception.getResponse();
    const messages =
      typeof response === 'object' && response !== null && 'message' in response
        ? response.message
        : exception.message;
    const text = Array.isArray(messages) ? messages.map(String) : [String(messages)];
    switch (status) {
      case HttpStatus.BAD_REQUEST:
        return {
          code: ErrorCode.ValidationFailed,
          message: text.join('; '),
          details: { messages: text },
        };
      case HttpStatus.UNAUTHORIZED:
      case HttpStatus.FORBIDDEN:
        return { code: ErrorCode.Forbidden, message: text.join('; ') };
      case HttpStatus.TOO_MANY_REQUESTS:
        return {
          code: ErrorCode.RateLimited,
          message: text.join('; '),
          details: { retryAfterMs: HOST_RETRY_AFTER_MS },
        };
      case HttpStatus.SERVICE_UNAVAILABLE:
        return {
          code: ErrorCode.Unavailable,
          message: text.join('; '),
          details: { retryAfterMs: HOST_RETRY_AFTER_MS },
        };
      default:
        if (Number(status) >= 400 && Number(status) < 500) {
          return { code: ErrorCode.Rejected, message: text.join('; '), details: { status } };
        }
    }
  }
  return { code: ErrorCode.InternalError, message: 'internal error' };
}
