import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import type { DevTokenResponse } from '@switchboard/protocol';
import { AppConfig } from '../config/app-config';
import { DEV_TOKEN_DEFAULT_TTL_S } from './dev-token.dto';

export interface DevTokenOptions {
  userId: string;
  name?: string;
  ttl?: number;
  rooms?: string[];
}

/**
 * Signs an HS256 access token for development and the demo: `sub`, `name`, a fresh `sid`, `iat`,
 * `exp` (`ttl` seconds ahead, default 3600) and the configured `iss` / `aud`.
 *
 * @param jwt a `JwtService` set up with the HS256 secret (the app's, or one of its own in the CLI)
 */
export async function signDevToken(
  jwt: JwtService,
  claims: { issuer?: string; audience?: string },
  options: DevTokenOptions,
): Promise<DevTokenResponse> {
  const expiresIn = options.ttl ?? DEV_TOKEN_DEFAULT_TTL_S;
  const accessToken = await jwt.signAsync(
    {
      name: options.name ?? options.userId,
      sid: randomBytes(16).toString('base64url'),
      ...(options.rooms ? { rooms: options.rooms } : {}),
    },
    {
      algorithm: 'HS256',
      subject: options.userId,
      expiresIn,
      ...(claims.issuer ? { issuer: claims.issuer } : {}),
      ...(claims.audience ? { audience: claims.audience } : {}),
    },
  );
  return { accessToken, tokenType: 'Bearer', expiresIn };
}

@Injectable()
export class DevTokenService {
  constructor(
    private readonly config: AppConfig,
    private readonly jwt: JwtService,
  ) {}

  get enabled(): boolean {
    return this.config.devAuth && this.config.jwt.key.kind === 'secret';
  }

  issue(options: DevTokenOptions): Promise<DevTokenResponse> {
    if (this.config.jwt.key.kind !== 'secret') {
      throw new Error('dev tokens need JWT_SECRET');
    }
    return signDevToken(
      this.jwt,
      { issuer: this.config.jwt.issuer, audience: this.config.jwt.audience },
      options,
    );
  }
}
