/** One event of a `text/event-stream`: its `event:` name (`message` when absent) and `data:`. */
export interface SseEvent {
  type: string;
  data: string;
}

/**
 * An incremental `text/event-stream` parser (the WHATWG HTML algorithm): give it the text as it
 * arrives, in pieces of any size, and it returns the events completed so far. Lines end with CRLF,
 * LF or CR; comment lines (`: ping`) and the `id:` and `retry:` fields are skipped, since the
 * client never lets the stream reconnect by itself.
 */
export class SseParser {
  private partial = '';
  /** A chunk ended with CR: a LF at the start of the next one belongs to the same line end. */
  private afterCr = false;
  private started = false;
  private type = '';
  private data: string[] = [];

  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) {
        text = text.slice(1);
      }
    }
    if (this.afterCr && text.startsWith('\n')) {
      text = text.slice(1);
    }
    this.afterCr = text.endsWith('\r');
    const lines = (this.partial + text).split(/\r\n|\r|\n/);
    this.partial = lines.pop() ?? '';
    const events: SseEvent[] = [];
    for (const line of lines) {
      const event = this.line(line);
      if (event !== null) {
        events.push(event);
      }
    }
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      const event =
        this.data.length === 0
          ? null
          : { type: this.type || 'message', data: this.data.join('\n') };
      this.type = '';
      this.data = [];
      return event;
    }
    if (line.startsWith(':')) {
      return null;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      this.type = value;
    } else if (field === 'data') {
      this.data.push(value);
    }
    return null;
  }
}
