import type { ErrorCode } from '@switchboard/protocol';

/** A request the server refuses; answered with an `error` frame, the socket stays open. */
export class ClientError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}
