import { timingSafeEqual } from 'node:crypto';

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') {
    return null;
  }
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

/**
 * Whether the header carries exactly `Bearer <secret>`, compared in constant time: the check of
 * the static keys (`METRICS_TOKEN`, `BROADCAST_API_KEY`).
 */
export function bearerMatches(header: string | string[] | undefined, secret: Buffer): boolean {
  const given = Buffer.from(bearerToken(header) ?? '');
  return given.length === secret.length && timingSafeEqual(given, secret);
}
