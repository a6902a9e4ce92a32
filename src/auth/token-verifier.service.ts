import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { JwtSecretRequestType, type JwtModuleOptions, JwtService } from '@nestjs/jwt';
import { type Algorithm, JsonWebTokenError, TokenExpiredError } from 'jsonwebtoken';
import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors } from 'jose';
import { sanitizeText } from '../common/sanitize';
import { AppConfig } from '../config/app-config';
import { Clock } from '../config/clock';
import { sha256 } from '../common/sha256';
import type { Session } from '../core/session';
import { TokenError } from './token.errors';

const MAX_USER_ID_LENGTH = 128;
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
 * Verifies access tokens with `JwtService` (see `jwtModuleOptions`). `exp` is required and at
 * most a year ahead; `nbf`, `iss` and `aud` are honoured.
 */
@Injectable()
export class TokenVerifier {
  constructor(
    private readonly jwt: JwtService,
    private readonly clock: Clock,
  ) {}

  /** @throws TokenError with `expired` or `invalid`. */
  async verify(token: string): Promise<Session> {
    let payload: Record<string, unknown>;
    try {
      payload = await this.jwt.verifyAsync<Record<string, unknown>>(token, {
        clockTimestamp: Math.floor(this.clock.now() / 1000),
      });
    } catch (error) {
      if (error instanceof TokenExpiredError) {
        throw new TokenError('expired', 'access token expired');
      }
      if (error instanceof JsonWebTokenError || error instanceof joseErrors.JOSEError) {
        throw new TokenError('invalid', `access token rejected: ${error.message}`);
      }
      throw error;
    }
    return sessionFromPayload(payload, token, this.clock.now());
  }
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

function sessionFromPayload(payload: Record<string, unknown>, token: string, now: number): Session {
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
  const name = [payload.name, payload.preferred_username].find(
    (value): value is string => typeof value === 'string' && value.length > 0,
  );
  const sid = [payload.sid, payload.jti].find(
    (value): value is string => typeof value === 'string' && value.length > 0,
  );
  return {
    userId: sub,
    name: sanitizeText(name ?? sub).slice(0, MAX_NAME_LENGTH) || sub,
    sessionId: sid ?? sha256(token),
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
