/** Codes carried by `error` frames (docs/protocol.md, Messages). An error frame never closes the socket by itself. */
export const ErrorCode = {
  BadJson: 'bad_json',
  BadEnvelope: 'bad_envelope',
  UnknownType: 'unknown_type',
  ValidationFailed: 'validation_failed',
  Forbidden: 'forbidden',
  NotMember: 'not_member',
  RateLimited: 'rate_limited',
  /** A shared store (Redis) is unreachable; retry after `retryAfterMs`. A code of Switchboard's own, beyond the usual set. */
  Unavailable: 'unavailable',
  /** A host application's handler refused the message (`WsException`, or an HTTP 4xx other than the above). */
  Rejected: 'rejected',
  /** A host application's handler failed unexpectedly; the server logged it and the socket stays open. */
  InternalError: 'internal_error',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
