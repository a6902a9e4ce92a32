import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { JwtSecretRequestType, type JwtModuleOptions, JwtService } from '@nestjs/jwt';
import { type Algorithm, JsonWebTokenError, TokenExpiredError } from 'jsonwebtoken';
import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors } from 'jose';
import { MAX_USER_ID_LENGTH } from '@switchboard/protocol';
import { sanitizeText } from '../common/sanitize';
import { AppConfig } from '../config/app-config';
import { Clock } from '../config/clock';
import { sha256 } from '../common/sha256';
import type { Session } from '../core/session';
import { TokenError } from './token.errors';
import { verifyHs256 } from './hs256';
import { ANONYMOUS_PREFIX } from './anonymous-identities';

/**
 * A token whose `exp` is further ahead than this is refused: no access token lives a year, and a
 * session must stay revocable (its revocation is kept until `exp`, which Redis must accept as a TTL).
 */
export const MAX_TOKEN_LIFETIME_S = 366 * 86_400;
const MAX_NAME_LENGTH = 128;
/** A `rooms` claim holds at most this many glob patterns, each at most this long. */
const MAX_ROOM_PATTERNS = 64;
const MAX_ROOM_PATTERN_LENGTH = 128;

/**
 * How `JwtService` verifies and signs, from the configuration: the accepted algorithms come from
 * here, never from the token. HS256 with `JWT_SECRET` (which also signs dev tokens), RS256 or
 * ES256 with `JWT_PUBLIC_KEY` (from the key's type), and RS256/ES256 from `JWT_JWKS_URL`, whose
 * key set `jose` fetches, caches and refetches on an unknown `kid`.
 */
export function jwtModuleOptions(config: AppConfig): JwtModuleOptions {
  const verifyOptions = {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    clockTolerance: config.jwt.clockToleranceS,
  };
  const source = config.jwt.key;
  // Keys are KeyObjects made once: given a string, jsonwebtoken imports the key on every call,
  // which measured 1.3 ms per HS256 verify against 70 µs with a KeyObject.
  switch (source.kind) {
    case 'secret': {
      const key = createSecretKey(Buffer.from(source.secret));
      return {
        secretOrKeyProvider: () => key,
        signOptions: { algorithm: 'HS256' },
        verifyOptions: { ...verifyOptions, algorithms: ['HS256'] },
      };
    }
    case 'public-key': {
      const key = createPublicKey(source.pem);
      return {
        secretOrKeyProvider: (requestType) => {
          if (requestType !== JwtSecretRequestType.VERIFY) {
            throw new Error('a public key verifies tokens; it signs none');
          }
          return key;
        },
        verifyOptions: { ...verifyOptions, algorithms: [algorithmFor(key)] },
      };
    }
    case 'jwks': {
      const keySet = createRemoteJWKSet(new URL(source.url), {
        cacheMaxAge: config.timings.jwksCacheMaxAgeMs,
        cooldownDuration: config.timings.jwksCooldownMs,
      });
      return {
        secretOrKeyProvider: (requestType, token) => {
          if (requestType !== JwtSecretRequestType.VERIFY || typeof token !== 'string') {
            throw new Error('a JWKS verifies tokens; it signs none');
          }
          // In Node, jose resolves JWKs to KeyObjects.
          return keySet(decodeProtectedHeader(token), {
            payload: '',
            signature: '',
          }) as Promise<KeyObject>;
        },
        verifyOptions: { ...verifyOptions, algorithms: ['RS256', 'ES256'] },
      };
    }
    default: {
      const unreachable: never = source;
      throw new Error(`unknown key source ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * Verified tokens remembered, at most (the least recently used go first): twice what the instance
 * admits (`MAX_CONNECTIONS`), at least 10,000. A reconnect storm brings up to a whole instance's
 * clients, each retrying with its token in random order: a smaller cache would drop tokens before
 * their next retry (the storm bench measured 10 % of the instance's CPU in JWT verification with
 * 10,000 for 19,000 clients). An entry is a hash and a session, a few hundred bytes.
 */
export function verifiedTokensKept(config: AppConfig): number {
  return Math.max(10_000, 2 * config.limits.maxConnections);
}
/**
 * Bytes the remembered sessions may hold together (estimated from their strings): an entry is a
 * few hundred bytes, but a token with a large `rooms` claim makes one of up to ~20 KB, and a cache
 * bounded by count alone could then hold hundreds of megabytes.
 */
export const VERIFIED_TOKENS_MAX_BYTES = 16 * 1024 * 1024;
/** What an entry costs besides its strings: the map slot, the objects, the numbers. */
const ENTRY_OVERHEAD_BYTES = 256;

/**
 * A remembered token is verified again after this long at the latest: a key withdrawn from a JWKS
 * stops being honoured within it.
 */
export const VERIFIED_TOKEN_MAX_AGE_MS = 5 * 60_000;

/**
 * Verifies access tokens: HS256 with `node:crypto` (`verifyHs256`, the connect path's cost), RS256
 * and ES256 with `JwtService` (see `jwtModuleOptions`). `exp` is required and at most a year ahead;
 * `nbf`, `iss` and `aud` are honoured.
 *
 * A reconnecting client asks for a ticket with the same token again and again, so a verified
 * token is remembered by its SHA-256 (never the token itself) until its `exp` (with the clock
 * tolerance) or `VERIFIED_TOKEN_MAX_AGE_MS`, whichever comes first, among the last
 * `verifiedTokensKept(config)` and within `VERIFIED_TOKENS_MAX_BYTES`. Revocation is not this class's: callers check it on every use, cached
 * or not (`AuthService.authenticate`).
 */
@Injectable()
export class TokenVerifier {
  private readonly verified = new Map<string, { session: Session; until: number; bytes: number }>();
  /** What the remembered entries hold together, estimated. */
  private bytes = 0;

  private readonly toleranceMs: number;
  private readonly kept: number;
  /** The token's checked payload: HS256 with `node:crypto`, anything else with `JwtService`. */
  private readonly payloadOf: (token: string, nowS: number) => Promise<Record<string, unknown>>;

  constructor(
    private readonly jwt: JwtService,
    private readonly clock: Clock,
    config: AppConfig,
  ) {
    this.toleranceMs = config.jwt.clockToleranceS * 1000;
    this.kept = verifiedTokensKept(config);
    const source = config.jwt.key;
    if (source.kind === 'secret') {
      const key = createSecretKey(Buffer.from(source.secret));
      this.payloadOf = (token, nowS) => Promise.resolve(verifyHs256(token, key, config.jwt, nowS));
    } else {
      this.payloadOf = (token, nowS) => this.jwtPayload(token, nowS);
    }
  }

  /** @throws TokenError with `expired` or `invalid`. */
  async verify(token: string): Promise<Session> {
    const hash = sha256(token);
    const now = this.clock.now();
    const known = this.verified.get(hash);
    if (known !== undefined) {
      this.verified.delete(hash);
      if (now < known.until) {
        this.verified.set(hash, known); // the most recently used go last
        return { ...known.session };
      }
      this.bytes -= known.bytes;
    }
    const session = await this.verifyToken(token, hash, now);
    this.forgetHash(hash); // verified twice at once: one entry
    const bytes = entryBytes(hash, session);
    this.verified.set(hash, {
      session: { ...session },
      until: Math.min(now + VERIFIED_TOKEN_MAX_AGE_MS, session.expiresAt + this.toleranceMs),
      bytes,
    });
    this.bytes += bytes;
    while (this.verified.size > this.kept || this.bytes > VERIFIED_TOKENS_MAX_BYTES) {
      this.forgetHash(this.verified.keys().next().value!);
    }
    return session;
  }

  /**
   * Drops the token from memory: its next use is verified again. For a request refused after the
   * token was verified (a ticket request over `TICKETS_PER_MINUTE`), so that a flood of refused
   * requests does not push the tokens of served clients out.
   */
  forget(token: string): void {
    this.forgetHash(sha256(token));
  }

  /** How many tokens are remembered, and the bytes they hold (estimated). */
  get remembered(): { tokens: number; bytes: number } {
    return { tokens: this.verified.size, bytes: this.bytes };
  }

  private forgetHash(hash: string): void {
    const entry = this.verified.get(hash);
    if (entry !== undefined) {
      this.verified.delete(hash);
      this.bytes -= entry.bytes;
    }
  }

  private async verifyToken(token: string, hash: string, now: number): Promise<Session> {
    const payload = await this.payloadOf(token, Math.floor(now / 1000));
    return sessionFromPayload(payload, hash, now);
  }

  /** RS256 / ES256 (a public key or a JWKS) through `JwtService`, errors as TokenError. */
  private async jwtPayload(token: string, nowS: number): Promise<Record<string, unknown>> {
    try {
      return await this.jwt.verifyAsync<Record<string, unknown>>(token, { clockTimestamp: nowS });
    } catch (error) {
      if (error instanceof TokenExpiredError) {
        throw new TokenError('expired', 'access token expired');
      }
      if (error instanceof JsonWebTokenError || error instanceof joseErrors.JOSEError) {
        throw new TokenError('invalid', `access token rejected: ${error.message}`);
      }
      throw error;
    }
  }
}

/** What a remembered session holds, estimated: two bytes a character plus the fixed overhead. */
function entryBytes(hash: string, session: Session): number {
  let characters = hash.length + session.userId.length + session.name.length;
  characters += session.sessionId.length;
  for (const pattern of session.rooms ?? []) {
    characters += pattern.length + 16;
  }
  return ENTRY_OVERHEAD_BYTES + 2 * characters;
}

function algorithmFor(key: KeyObject): Algorithm {
  if (key.asymmetricKeyType === 'rsa') {
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return 'ES256';
  }
  throw new Error('JWT_PUBLIC_KEY must be an RSA or EC P-256 public key');
}

/** @param hash the token's SHA-256, the session id of a token without `sid` or `jti` */
function sessionFromPayload(payload: Record<string, unknown>, hash: string, now: number): Session {
  const { sub, exp } = payload;
  if (typeof exp !== 'number') {
    throw new TokenError('invalid', 'access token rejected: exp is required');
  }
  if (exp > now / 1000 + MAX_TOKEN_LIFETIME_S) {
    throw new TokenError('invalid', 'access token rejected: exp is more than a year ahead');
  }
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_USER_ID_LENGTH) {
    throw new TokenError('invalid', 'access token rejected: sub must be a non-empty string');
  }
  if (sub.startsWith(ANONYMOUS_PREFIX)) {
    throw new TokenError(
      'invalid',
      `access token rejected: sub must not start with ${ANONYMOUS_PREFIX} (anonymous visitors' ids)`,
    );
  }
  const name = [payload.name, payload.preferred_username].find(
    (value): value is string => typeof value === 'string' && value.length > 0,
  );
  const sid = [payload.sid, payload.jti].find(
    (value): value is string => typeof value === 'string' && value.length > 0,
  );
  return {
    userId: sub,
    name: sanitizeText(name ?? sub).slice(0, MAX_NAME_LENGTH) || sub,
    sessionId: sid ?? hash,
    expiresAt: exp * 1000,
    rooms: roomPatterns(payload.rooms),
  };
}

function roomPatterns(claim: unknown): string[] | null {
  if (claim === undefined) {
    return null;
  }
  if (
    !Array.isArray(claim) ||
    claim.length > MAX_ROOM_PATTERNS ||
    !claim.every(
      (pattern) => typeof pattern === 'string' && pattern.length <= MAX_ROOM_PATTERN_LENGTH,
    )
  ) {
    throw new TokenError(
      'invalid',
      `access token rejected: rooms must be an array of at most ${MAX_ROOM_PATTERNS} strings of at most ${MAX_ROOM_PATTERN_LENGTH} characters`,
    );
  }
  return claim as string[];
}
