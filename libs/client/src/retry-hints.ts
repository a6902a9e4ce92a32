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

/** The wait a refused HTTP answer asks for: its JSON body's `retryAfterMs`, else `Retry-After`. */
export async function responseHintMs(response: Response): Promise<number | null> {
  let body: unknown = null;
  try {
    body = JSON.parse(await response.text()) as unknown;
  } catch {
    body = null; // Not JSON (a proxy's page): the Retry-After header, if any, is the hint.
  }
  return retryAfterMs(response.headers.get('retry-after'), body);
}
