/**
 * WebSocket close codes used by Switchboard (docs/protocol.md, Close codes). The SDK's reaction to each code is part of
 * the contract: see {@link CLOSE_CODE_ACTIONS}.
 */
export const CloseCode = {
  /** Normal closure. */
  Normal: 1000,
  /** The instance is shutting down; reconnect elsewhere with jittered backoff. */
  GoingAway: 1001,
  /** A protocol violation (unmasked frame, reserved bits, bad control frame). */
  ProtocolError: 1002,
  /** A binary frame was sent; only JSON text frames are accepted. */
  UnsupportedData: 1003,
  /** The socket died without a close frame (reported locally, never sent). */
  Abnormal: 1006,
  /** A text frame was not valid UTF-8. */
  InvalidPayload: 1007,
  /** Policy violation: flooding or repeated errors. */
  PolicyViolation: 1008,
  /** A message exceeded `WS_MAX_PAYLOAD_BYTES`. */
  MessageTooBig: 1009,
  /** An internal server error. */
  InternalError: 1011,
  /** Missing, invalid, expired or already used ticket (or invalid Bearer token). */
  Unauthorized: 4001,
  /** The session (access token) expired. */
  SessionExpired: 4002,
  /** The session was revoked (logout) or the connection is forbidden. */
  SessionRevoked: 4003,
  /** Slow consumer: unsent data exceeded `WS_SEND_BUFFER_MAX_BYTES`. */
  SlowConsumer: 4008,
  /** Replaced by a newer connection of the same user. */
  Replaced: 4009,
  /** Too many connection attempts; the reason says `retry after N s`. */
  TooManyAttempts: 4029,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * The fixed close reasons the server sends, next to their codes; the two that carry a time are
 * built and read by the functions below (`retry after N s`, `reconnect in N ms`).
 */
export const CloseReason = {
  /** With 1003. */
  BinaryFrame: 'binary frames are not supported',
  /** With 1008: more than twice `WS_MESSAGES_PER_WINDOW`. */
  MessageRate: 'message rate exceeded',
  /** With 1008: the tenth error in a window. */
  TooManyErrors: 'too many errors',
  /** With 1011. */
  InternalError: 'internal error',
  /** With 4001. */
  MissingTicket: 'missing ticket',
  /** With 4001. */
  TicketRejected: 'invalid, expired or used ticket',
  /** With 4001: a Bearer token that does not verify. */
  TokenRejected: 'invalid access token',
  /** With 4002. */
  SessionExpired: 'session expired',
  /** With 4003. */
  SessionRevoked: 'session revoked',
  /** With 4008. */
  SlowConsumer: 'slow consumer',
  /** With 4009. */
  Replaced: 'replaced by a newer connection',
} as const;

export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

/** What a client should do after a close code (docs/sdk.md, what the SDK does on each close). */
export type CloseAction =
  'none' | 'reconnect' | 'new-ticket' | 'refresh-token' | 'signed-out' | 'replaced' | 'wait';

export const CLOSE_CODE_ACTIONS: Readonly<Record<number, CloseAction>> = {
  [CloseCode.Normal]: 'none',
  [CloseCode.GoingAway]: 'reconnect',
  [CloseCode.ProtocolError]: 'reconnect',
  [CloseCode.UnsupportedData]: 'reconnect',
  [CloseCode.Abnormal]: 'reconnect',
  [CloseCode.InvalidPayload]: 'reconnect',
  [CloseCode.PolicyViolation]: 'reconnect',
  [CloseCode.MessageTooBig]: 'reconnect',
  [CloseCode.InternalError]: 'reconnect',
  [CloseCode.Unauthorized]: 'new-ticket',
  [CloseCode.SessionExpired]: 'refresh-token',
  [CloseCode.SessionRevoked]: 'signed-out',
  [CloseCode.SlowConsumer]: 'reconnect',
  [CloseCode.Replaced]: 'replaced',
  [CloseCode.TooManyAttempts]: 'wait',
};

/** The action for any close code; unknown codes reconnect with backoff. */
export function closeAction(code: number): CloseAction {
  return CLOSE_CODE_ACTIONS[code] ?? 'reconnect';
}

/** Parses the seconds out of a `4029` reason (`retry after N s`); null when absent. */
export function retryAfterSeconds(reason: string): number | null {
  const match = /^retry after (\d+) s$/.exec(reason);
  return match ? Number(match[1]) : null;
}

/** Builds the `4029` close reason. */
export function retryAfterReason(seconds: number): string {
  return `retry after ${Math.max(1, Math.ceil(seconds))} s`;
}

/** Builds a drain's `1001` close reason: `reconnect in <ms>`. */
export function reconnectReason(delayMs: number): string {
  return `reconnect in ${Math.max(0, Math.round(delayMs))} ms`;
}

/** Parses the delay out of a `1001` reason (`reconnect in 4310 ms`); null when absent. */
export function reconnectInMs(reason: string): number | null {
  const match = /^reconnect in (\d+) ms$/.exec(reason);
  return match ? Number(match[1]) : null;
}
