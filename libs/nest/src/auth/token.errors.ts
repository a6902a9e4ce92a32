/** Why an access token was refused. `expired` tells the client to get a fresh token. */
export type TokenFailure = 'missing' | 'invalid' | 'expired' | 'revoked';

export class TokenError extends Error {
  constructor(
    readonly failure: TokenFailure,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}
