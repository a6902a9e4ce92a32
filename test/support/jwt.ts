import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { TEST_SECRET } from './app';

const now = (): number => Math.floor(Date.now() / 1000);

/** Signs an HS256 token with the test secret; claims override the defaults (sub, exp, sid). */
export function hsToken(claims: JWTPayload = {}, secret = TEST_SECRET): Promise<string> {
  return new SignJWT({ sub: 'alice', sid: `s-${Math.random()}`, exp: now() + 3600, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret));
}

export function signWith(
  key: KeyObject,
  alg: 'RS256' | 'ES256',
  claims: JWTPayload = {},
  kid?: string,
): Promise<string> {
  return new SignJWT({ sub: 'alice', exp: now() + 3600, ...claims })
    .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
    .sign(key);
}

/** An unsigned `alg: none` token. */
export function noneToken(claims: JWTPayload = {}): string {
  const encode = (value: object): string =>
    Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ sub: 'alice', exp: now() + 3600, ...claims })}.`;
}

/** Flips the payload to another user, keeping the original signature. */
export function tamper(token: string): string {
  const [header, , signature] = token.split('.');
  const payload = Buffer.from(JSON.stringify({ sub: 'mallory', exp: now() + 3600 })).toString(
    'base64url',
  );
  return `${header}.${payload}.${signature}`;
}

export function rsaKeys(): { privateKey: KeyObject; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function ecKeys(): { privateKey: KeyObject; publicPem: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privateKey,
    publicKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export const seconds = now;
