import { createHmac, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ANONYMOUS_USER_PREFIX } from '@switchboard/protocol';
import { randomToken } from '../common/random';
import { sanitizeText } from '../common/sanitize';
import { ANONYMOUS_COOKIE, AppConfig } from '../config/app-config';
import { Clock } from '../config/clock';
import type { Session } from '../core/session';
import { TokenError } from './token.errors';

/** Every anonymous user id starts with this; an access token's `sub` never does. */
export const ANONYMOUS_PREFIX = ANONYMOUS_USER_PREFIX;
/** A visitor's display name: 1–64 characters once sanitized. */
export const MAX_ANONYMOUS_NAME_LENGTH = 64;
/** A cookie value longer than this is refused before it is decoded. */
const MAX_COOKIE_VALUE_LENGTH = 1024;
/** Random bytes of an anonymous user id and of its session id. */
const ID_BYTES = 16;

/** What the cookie carries: who, their name, the session, until when (s since the epoch). */
interface AnonymousClaims {
  u: string;
  n: string;
  s: string;
  e: number;
}

/**
 * Anonymous visitors' identities (`ANONYMOUS=true`), kept by the browser in a signed cookie:
 * `base64url(JSON claims) "." base64url(HMAC-SHA256)`, with the key of `AnonymousConfig.secret`
 * (never `JWT_SECRET` itself: a cookie can never pass as an access token, nor a token as a cookie).
 * Nothing is stored on the server until the visitor logs out (the revocation).
 */
@Injectable()
export class AnonymousIdentities {
  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  get enabled(): boolean {
    return this.config.anonymous.enabled;
  }

  /**
   * A new identity, or the same one renamed and renewed when `current` is a live anonymous
   * session. Answers the session and its cookie value.
   */
  issue(name: string, current?: Session): { session: Session; value: string } {
    const shown = sanitizeText(name)
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, MAX_ANONYMOUS_NAME_LENGTH);
    return this.renew({
      userId: current?.userId ?? `${ANONYMOUS_PREFIX}${randomToken(ID_BYTES)}`,
      name: shown === '' ? 'Guest' : shown,
      sessionId: current?.sessionId ?? `${ANONYMOUS_PREFIX}${randomToken(ID_BYTES)}`,
    });
  }

  /** The same identity with a fresh `ANONYMOUS_TTL_S` ("renewed on use"). */
  renew(identity: Pick<Session, 'userId' | 'name' | 'sessionId'>): {
    session: Session;
    value: string;
  } {
    const expiresAt =
      Math.floor(this.clock.now() / 1000) * 1000 + this.config.anonymous.ttlS * 1000;
    const claims: AnonymousClaims = {
      u: identity.userId,
      n: identity.name,
      s: identity.sessionId,
      e: expiresAt / 1000,
    };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return { session: this.session(claims), value: `${payload}.${this.sign(payload)}` };
  }

  /**
   * The session a cookie value names. Revocation is the caller's to check.
   *
   * @throws TokenError `invalid` (bad format or signature), `expired`
   */
  read(value: string): Session {
    if (!this.enabled) {
      throw new TokenError('invalid', 'anonymous visitors are not enabled');
    }
    const dot = value.indexOf('.');
    if (value.length > MAX_COOKIE_VALUE_LENGTH || dot <= 0) {
      throw new TokenError('invalid', 'anonymous cookie rejected: malformed');
    }
    const payload = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.sign(payload), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new TokenError('invalid', 'anonymous cookie rejected: bad signature');
    }
    const claims = parseClaims(payload);
    if (claims === null) {
      throw new TokenError('invalid', 'anonymous cookie rejected: malformed');
    }
    if (claims.e * 1000 <= this.clock.now()) {
      throw new TokenError('expired', 'anonymous identity expired');
    }
    return this.session(claims);
  }

  /**
   * The `Set-Cookie` value that stores it: HttpOnly, `SameSite=Lax`, the whole site's path,
   * `Secure` when the page reached this server over HTTPS.
   */
  setCookie(value: string, secure: boolean): string {
    return cookie(value, this.config.anonymous.ttlS, secure);
  }

  /** The `Set-Cookie` value that removes it (on logout). */
  clearCookie(secure: boolean): string {
    return cookie('', 0, secure);
  }

  private session(claims: AnonymousClaims): Session {
    return {
      userId: claims.u,
      name: claims.n,
      sessionId: claims.s,
      expiresAt: claims.e * 1000,
      rooms: [...this.config.anonymous.rooms],
      anonymous: true,
    };
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.config.anonymous.secret).update(payload).digest('base64url');
  }
}

function cookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${ANONYMOUS_COOKIE}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

function parseClaims(payload: string): AnonymousClaims | null {
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof claims !== 'object' || claims === null) {
    return null;
  }
  const { u, n, s, e } = claims as Record<string, unknown>;
  return typeof u === 'string' &&
    u.startsWith(ANONYMOUS_PREFIX) &&
    typeof n === 'string' &&
    typeof s === 'string' &&
    typeof e === 'number'
    ? { u, n, s, e }
    : null;
}
