import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { SignJWT } from 'jose';
import type { DevTokenResponse } from '@app/protocol';
import { AppConfig } from '../config/app-config';
import { DEV_TOKEN_DEFAULT_TTL_S } from './dev-token.dto';

export interface DevTokenOptions {
  userId: string;
  name?: string;
  ttl?: number;
  rooms?: string[];
}

/** Signs HS256 access tokens with the configured secret, for development and the demo. */
export async function signDevToken(
  secret: string,
  claims: { issuer?: string; audience?: string },
  options: DevTokenOptions,
): Promise<DevTokenResponse> {
  const expiresIn = options.ttl ?? DEV_TOKEN_DEFAULT_TTL_S;
  let jwt = new SignJWT({
    name: options.name ?? options.userId,
    sid: randomBytes(16).toString('base64url'),
    ...(options.rooms ? { rooms: options.rooms } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
  if (claims.issuer) {
    jwt = jwt.setIssuer(claims.issuer);
  }
  if (claims.audience) {
    jwt = jwt.setAudience(claims.audience);
  }
  const accessToken = await jwt.sign(new TextEncoder().encode(secret));
  return { accessToken, tokenType: 'Bearer', expiresIn };
}

@Injectable()
export class DevTokenService {
  constructor(private readonly config: AppConfig) {}

  get enabled(): boolean {
    return this.config.devAuth && this.config.jwt.key.kind === 'secret';
  }

  issue(options: DevTokenOptions): Promise<DevTokenResponse> {
    const key = this.config.jwt.key;
    if (key.kind !== 'secret') {
      throw new Error('dev tokens need JWT_SECRET');
    }
    return signDevToken(
      key.secret,
      { issuer: this.config.jwt.issuer, audience: this.config.jwt.audience },
      options,
    );
  }
}
