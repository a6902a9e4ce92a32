import { Injectable } from '@nestjs/common';
import type { Session } from '../../auth/session';

/**
 * Decides who may join which room. The default, `ClaimsRoomPolicy`, follows the token's `rooms`
 * claim. Applications replace it with their own provider (see `AppModule.forRoot`).
 */
export abstract class RoomPolicy {
  /**
   * Whether the session may join the room. The name is already valid, and `user:` rooms never
   * get here (they are reserved).
   */
  abstract canJoin(session: Session, room: string): boolean | Promise<boolean>;
}

/**
 * Any room when the token has no `rooms` claim; otherwise only rooms matching one of its glob
 * patterns (`*` any run of characters, `?` one character), e.g. `team-42:*`.
 */
@Injectable()
export class ClaimsRoomPolicy extends RoomPolicy {
  private readonly compiled = new WeakMap<string[], RegExp>();

  canJoin(session: Session, room: string): boolean {
    if (session.rooms === null) {
      return true;
    }
    let pattern = this.compiled.get(session.rooms);
    if (pattern === undefined) {
      pattern = globsToRegExp(session.rooms);
      this.compiled.set(session.rooms, pattern);
    }
    return pattern.test(room);
  }
}

export function globsToRegExp(globs: readonly string[]): RegExp {
  if (globs.length === 0) {
    return /$^/;
  }
  const alternatives = globs.map((glob) =>
    glob
      .split('')
      .map((char) =>
        char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&'),
      )
      .join(''),
  );
  return new RegExp(`^(?:${alternatives.join('|')})$`, 's');
}
