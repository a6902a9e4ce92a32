import type { ServerResponse } from 'node:http';
import { type Transport, TransportState } from '../../core/connection';

/** Every server frame is JSON that starts with its type: `{"type":"…"`. */
const TYPE_PREFIX = '{"type":"';
const TYPE_PREFIX_BYTES = Buffer.from(TYPE_PREFIX);
const QUOTE = 0x22;
const END = Buffer.from('\n\n');
const KEEP_ALIVE = ': ping\n\n';

/**
 * A Server-Sent Events stream as a connection's transport: each frame a WebSocket would carry is
 * one event, `event: <its type>` and `data: <the frame's JSON>` (one line: JSON has no raw line
 * breaks). A close is the event `close` with `{ code, reason }`, then the end of the response.
 * The client's frames come by `POST <SSE_PATH>/messages`, not through this object.
 */
export class SseTransport implements Transport {
  readyState: number = TransportState.Open;
  private closedWith: { code: number; reason: string } | null = null;
  private readonly closeListeners: Array<(code: number) => void> = [];

  constructor(private readonly res: ServerResponse) {
    // The client went away (or the link broke): the stream is over, as a WebSocket's 1006.
    res.once('close', () => this.ended(this.closedWith?.code ?? 1006));
    res.on('error', () => undefined); // 'close' follows
  }

  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  /** Called once when the stream ends, with the code this server closed it with (1006 if not). */
  onClose(listener: (code: number) => void): void {
    this.closeListeners.push(listener);
  }

  send(frame: string | Buffer): void {
    if (this.readyState !== TransportState.Open) {
      return;
    }
    if (typeof frame === 'string') {
      this.res.write(`event: ${eventOf(frame)}\ndata: ${frame}\n\n`);
      return;
    }
    // The same bytes go to many connections: written around, not copied (the wire is corked).
    this.res.write(`event: ${eventOfBytes(frame)}\ndata: `);
    this.res.write(frame);
    this.res.write(END);
  }

  close(code: number, reason: string): void {
    if (this.readyState !== TransportState.Open) {
      return;
    }
    this.closedWith = { code, reason };
    this.readyState = TransportState.Closing;
    this.res.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
  }

  terminate(): void {
    this.readyState = TransportState.Closing;
    this.res.destroy();
  }

  /** A comment line: proxies see traffic, and the client sees a live stream. */
  keepAlive(): void {
    if (this.readyState === TransportState.Open) {
      this.res.write(KEEP_ALIVE);
    }
  }

  private ended(code: number): void {
    if (this.readyState === TransportState.Closed) {
      return;
    }
    this.readyState = TransportState.Closed;
    for (const listener of this.closeListeners) {
      listener(code);
    }
  }
}

/** The event name of a serialized frame: its `type`. */
function eventOf(frame: string): string {
  if (frame.startsWith(TYPE_PREFIX)) {
    const end = frame.indexOf('"', TYPE_PREFIX.length);
    if (end > 0) {
      return frame.slice(TYPE_PREFIX.length, end);
    }
  }
  return 'message';
}

function eventOfBytes(frame: Buffer): string {
  if (frame.subarray(0, TYPE_PREFIX_BYTES.length).equals(TYPE_PREFIX_BYTES)) {
    const end = frame.indexOf(QUOTE, TYPE_PREFIX_BYTES.length);
    if (end > 0) {
      return frame.toString('utf8', TYPE_PREFIX_BYTES.length, end);
    }
  }
  return 'message';
}
