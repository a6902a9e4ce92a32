/** What a write batch needs of the byte stream under a socket (a `net.Socket` or `tls.TLSSocket`). */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Frames that one turn of the event loop sends to one socket leave in one write. The first frame
 * corks the socket's stream; every stream corked in this turn is uncorked once, in `setImmediate`
 * (after the I/O that caused the sends, before the next turn waits for I/O again).
 *
 * Why: `ws` writes every frame at once, one `writev` system call per frame. When many rooms
 * publish at the same time (a join storm's presence notices, a busy room), a socket gets several
 * frames per turn, and the system calls, not the frames, cost most of the CPU. Corked, they leave
 * together. A lone frame waits for the end of the turn, well under a millisecond.
 *
 * The corked bytes count in the socket's `bufferedAmount`, so the send buffer ceiling still holds.
 */
export class WriteBatch {
  private corked: Corkable[] = [];
  private spare: Corkable[] = [];
  private scheduled = false;
  private readonly flush = (): void => {
    const corked = this.corked;
    this.corked = this.spare; // swap, so an uncork that sends again starts a new batch
    this.scheduled = false;
    for (const stream of corked) {
      try {
        stream.uncork();
      } catch {
        // A stream that fails to flush is closing; the others must still leave.
      }
    }
    corked.length = 0;
    this.spare = corked;
  };

  /** Corks `stream` until the end of this turn. Call once per stream per turn. */
  hold(stream: Corkable): void {
    stream.cork();
    this.corked.push(stream);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }
}
