import { createHash } from 'node:crypto';

/** SHA-256 of a string, base64url: how tickets are stored and how token-less sessions are named. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
