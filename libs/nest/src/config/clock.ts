import { Injectable } from '@nestjs/common';

/**
 * The wall clock behind token, session and ticket lifetimes (`exp`, the session scheduler, the
 * in-memory ticket store). Reading it through one injectable lets a test move an app's time
 * forward instead of sleeping through a whole-second `exp`; production uses this one.
 */
@Injectable()
export class Clock {
  /** Milliseconds since the epoch, as `Date.now()`. */
  now(): number {
    return Date.now();
  }
}
