/** The margin kept before a ticket's expiry: a ticket this close to it is not tried again. */
export const TICKET_MARGIN_MS = 5_000;

export { reconnectInMs } from '@switchboard/protocol';

/**
 * The wait a refusal asks for, in ms: the body's `retryAfterMs` when the body is JSON and has one,
 * else the `Retry-After` header (seconds or an HTTP date); null when neither says.
 */
export function retryAfterMs(
  header: string | null | undefined,
  body?: unknown,
  now = Date.now(),
): number | null {
  const fromBody = (body as { retryAfterMs?: unknown } | null | undefined)?.retryAfterMs;
  if (typeof fromBody === 'number' && Number.isFinite(fromBody) && fromBody >= 0) {
    return fromBody;
  }
  if (header === null || header === undefined || header.trim() === '') {
    return null;
  }
  const seconds = Number(header);
  if (Number.isFinite(seconds)) {
    return seconds >= 0 ? seconds * 1000 : null;
  }
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
