/** Who is on the other end of a token, ticket or socket. */
export interface Session {
  userId: string;
  name: string;
  /** The token's `sid`, else its `jti`, else the token's SHA-256. Logout revokes this id. */
  sessionId: string;
  /** When the access token expires, in ms since the epoch. */
  expiresAt: number;
  /** Glob patterns of the rooms this session may join (the token's `rooms` claim); null: any. */
  rooms: string[] | null;
  /**
   * An anonymous visitor (`anon:` id, from `POST /auth/anonymous`): rooms of `ANONYMOUS_ROOMS`
   * only, `ANONYMOUS_MESSAGES_PER_WINDOW`. Absent for a signed-in user.
   */
  anonymous?: true;
}
