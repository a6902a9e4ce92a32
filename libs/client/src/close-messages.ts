import { CloseCode } from '@switchboard/protocol';

/** What each close code means, in the words of the errors the client rejects requests with. */
const MEANINGS: Record<CloseCode, string> = {
  [CloseCode.Normal]: 'closed normally',
  [CloseCode.GoingAway]: 'the server is shutting down',
  [CloseCode.ProtocolError]: 'protocol error',
  [CloseCode.UnsupportedData]: 'binary frame refused',
  [CloseCode.Abnormal]: 'closed without a close frame',
  [CloseCode.InvalidPayload]: 'invalid UTF-8',
  [CloseCode.PolicyViolation]: 'policy violation',
  [CloseCode.MessageTooBig]: 'message too big',
  [CloseCode.InternalError]: 'internal server error',
  [CloseCode.Unauthorized]: 'ticket refused',
  [CloseCode.SessionExpired]: 'session expired',
  [CloseCode.SessionRevoked]: 'session revoked or forbidden',
  [CloseCode.SlowConsumer]: 'slow consumer',
  [CloseCode.Replaced]: 'replaced by a newer connection',
  [CloseCode.TooManyAttempts]: 'too many connection attempts',
};

/**
 * Why a socket closed, as the requests that waited on it are told: `connection refused: too many
 * connection attempts (4029, retry after 12 s)`. A socket that never opened was refused by the
 * server, or failed (`1006`: the network, a proxy, or an upgrade answered with an HTTP error).
 */
export function describeClose(code: number, reason: string, wasOpen: boolean): string {
  const what = wasOpen
    ? 'connection closed'
    : code === CloseCode.Abnormal
      ? 'connection failed'
      : 'connection refused';
  const meaning = (MEANINGS as Record<number, string | undefined>)[code] ?? 'closed';
  return `${what}: ${meaning} (${reason ? `${code}, ${reason}` : code})`;
}
