import { createHmac, type KeyObject, timingSafeEqual } from 'node:crypto';
import { TokenError } from './token.errors';

/** What an HS256 token must satisfy besides its signature; the same rules as `jsonwebtoken`. */
export interface Hs256Rules {
  issuer: string | undefined;
  audience: string | undefined;
  clockToleranceS: number;
}

/** A token longer than this is refused before any decoding (a header line is at most 16 KiB). */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** base64url of a 32-byte HMAC-SHA256 */
const SIGNATURE_LENGTH = 43;
/** A segment of a compact JWS: base64url without padding. */
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Verifies an HS256 JWT with `node:crypto` alone and returns its payload: the connect path's
 * verification, measured at about a fifth of `jsonwebtoken`'s (docs/BENCHMARKS.md, issue 22).
 *
 * The header's `alg` must be `HS256` (never taken from the token: `none` and every other algorithm
 * are refused); the signature is compared in constant time; `exp` (expired past the tolerance),
 * `nbf`, `iss` and `aud` follow `jsonwebtoken`'s rules, which the unit tests hold it to.
 *
 * @param nowS the verification time in seconds since the epoch
 * @throws TokenError `expired`, or `invalid` naming what is wrong
 */
export function verifyHs256(
  token: string,
  key: KeyObject,
  rules: Hs256Rules,
  nowS: number,
): Record<string, unknown> {
  if (token.length > MAX_TOKEN_LENGTH) {
    throw invalid('jwt too long');
  }
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  if (firstDot <= 0 || secondDot <= firstDot + 1 || token.indexOf('.', secondDot + 1) !== -1) {
    throw invalid('jwt malformed');
  }
  const header = decodeJson(token.slice(0, firstDot));
  if (header === undefined) {
    throw invalid('invalid token');
  }
  if (header.alg !== 'HS256') {
    throw invalid('invalid algorithm');
  }
  const signature = token.slice(secondDot + 1);
  const expected = createHmac('sha256', key).update(token.slice(0, secondDot)).digest('base64url');
  if (
    signature.length !== SIGNATURE_LENGTH ||
    !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))
  ) {
    throw invalid('invalid signature');
  }
  const payload = decodeJson(token.slice(firstDot + 1, secondDot));
  if (payload === undefined) {
    throw invalid('invalid payload');
  }
  checkTimes(payload, rules.clockToleranceS, nowS);
  if (rules.audience !== undefined) {
    const audiences = Array.isArray(payload.aud) ? (payload.aud as unknown[]) : [payload.aud];
    if (!audiences.includes(rules.audience)) {
      throw invalid(`jwt audience invalid. expected: ${rules.audience}`);
    }
  }
  if (rules.issuer !== undefined && payload.iss !== rules.issuer) {
    throw invalid(`jwt issuer invalid. expected: ${rules.issuer}`);
  }
  return payload;
}

function checkTimes(payload: Record<string, unknown>, toleranceS: number, nowS: number): void {
  const { nbf, exp } = payload;
  if (nbf !== undefined) {
    if (typeof nbf !== 'number') {
      throw invalid('invalid nbf value');
    }
    if (nbf > nowS + toleranceS) {
      throw invalid('jwt not active');
    }
  }
  if (exp !== undefined) {
    if (typeof exp !== 'number') {
      throw invalid('invalid exp value');
    }
    if (nowS >= exp + toleranceS) {
      throw new TokenError('expired', 'access token expired');
    }
  }
}

/** A base64url segment holding a JSON object, or undefined. */
function decodeJson(segment: string): Record<string, unknown> | undefined {
  if (!BASE64URL.test(segment)) {
    return undefined;
  }
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined; // not JSON: the caller names the segment
  }
}

function invalid(reason: string): TokenError {
  return new TokenError('invalid', `access token rejected: ${reason}`);
}
