import { Injectable } from '@nestjs/common';
import type { Session } from '../../core/session';

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
  canJoin(session: Session, room: string): boolean {
    return session.rooms === null || session.rooms.some((glob) => globMatches(glob, room));
  }
}

/**
 * Whether `text` matches the glob (`*` any run of characters, `?` exactly one). Iterative, with
 * one remembered `*`: at most len(glob) × len(text) steps, however many stars the glob has. A
 * glob turned into a RegExp would backtrack exponentially: `*a*a*a*a*a*a*a*b` against 64 `a`s
 * froze the event loop for a minute.
 */
export function globMatches(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (g < glob.length && (glob[g] === '?' || glob[g] === text[t])) {
      g++;
      t++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      resume = t;
    } else if (star >= 0) {
      // Let the last star swallow one more character, and retry what follows it.
      g = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') {
    g++;
  }
  return g === glob.length;
}
