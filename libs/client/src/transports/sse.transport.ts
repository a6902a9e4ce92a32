import { CloseCode, type WelcomeData } from '@switchboard/protocol';
import { responseHintMs } from '../retry-hints';
import { SseParser } from './sse-parser';
import type { Transport, TransportListener } from './transport';

/** The most frames in one POST, and the largest POST body (the server's limits). */
export const MAX_POST_FRAMES = 50;
export const MAX_POST_BYTES = 64 * 1024;
/** A stream answered `200` whose welcome does not come within this long is buffered somewhere. */
export const SSE_WELCOME_TIMEOUT_MS = 10_000;
/** After a POST's `401`, how long the stream's own `event: close` may take to say why. */
const CLOSE_GRACE_MS = 1_000;

/**
 * Server-Sent Events over `fetch`: `GET <ssePath>?ticket=…` streams the server's frames, one event
 * each (`event: <type>`, `data: <the frame's JSON>`), and the client's frames go out with
 * `POST <ssePath>/messages`. `fetch` rather than `EventSource`: it shows the refusal's status and
 * `Retry-After`, and never reconnects by itself (which would spend the single-use ticket again).
 *
 * Frames sent in one tick go out as one POST (an array, at most {@link MAX_POST_FRAMES} frames and
 * {@link MAX_POST_BYTES}), and one POST at a time, so that the server sees them in order. The
 * stream ends with `event: close` (a close code, as a WebSocket's); a stream that ends without
 * one, or carries nothing for two heartbeats, broke (1006).
 */
export class SseTransport implements Transport {
  readonly name = 'sse';
  listener: TransportListener | null = null;
  private readonly abort = new AbortController();
  private readonly queue: string[] = [];
  private connectionId: string | null = null;
  private sendToken: string | null = null;
  private flushing = false;
  private ended = false;
  /** Set by `close()`: the code and reason the close event then reports. */
  private closing: { code: number; reason: string } | null = null;
  private lastActivity = 0;
  private idleMs = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly fetchImpl: typeof fetch,
    streamUrl: string,
    private readonly messagesUrl: string,
  ) {
    void this.read(streamUrl);
  }

  send(frame: string): void {
    if (this.ended) {
      return;
    }
    this.queue.push(frame);
    if (!this.flushing) {
      this.flushing = true;
      // Whatever else is sent in this tick joins the same POST.
      void Promise.resolve().then(() => this.flush());
    }
  }

  close(code: number, reason: string): void {
    if (this.ended || this.closing !== null) {
      return;
    }
    this.closing = { code, reason };
    this.abort.abort();
  }

  private async read(url: string): Promise<void> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        headers: { accept: 'text/event-stream' },
        signal: this.abort.signal,
      });
    } catch {
      this.end(CloseCode.Abnormal, ''); // the network, or close() before the answer
      return;
    }
    if (response.status !== 200 || response.body === null) {
      const hintMs = await responseHintMs(response);
      if (!this.ended && this.closing === null) {
        this.listener?.refused(response.status, hintMs);
      }
      this.end(CloseCode.Abnormal, '');
      return;
    }
    this.listener?.open();
    this.watch(SSE_WELCOME_TIMEOUT_MS, 'no welcome');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.ended) {
          break;
        }
        this.lastActivity = Date.now();
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          this.event(event.type, event.data);
          if (this.ended) {
            break;
          }
        }
      }
    } catch {
      // The stream broke, or close() aborted it: end() below says which.
    }
    if (!this.ended) {
      void reader.cancel().catch(() => undefined); // nothing is read from it any more
    }
    this.end(CloseCode.Abnormal, '');
  }

  private event(type: string, data: string): void {
    if (type === 'close') {
      const close = parseClose(data);
      this.end(close.code, close.reason);
      return;
    }
    if (type === 'welcome' && this.connectionId === null) {
      const welcome = parseWelcome(data);
      if (welcome !== null) {
        this.connectionId = welcome.connectionId;
        this.sendToken = welcome.sendToken ?? null;
        // Nothing (not even the `: ping` comment) for two heartbeats: the stream is dead.
        this.watch(2 * welcome.heartbeatMs, 'stream idle');
      }
    }
    this.listener?.message(data);
    if (this.sendToken !== null && this.queue.length > 0 && !this.flushing) {
      this.flushing = true;
      void this.flush();
    }
  }

  /** Sends the queue, one POST at a time, until it is empty. */
  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.ended && this.sendToken !== null) {
        await this.post(this.take());
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The next POST's frames: as many as fit, and at least one. */
  private take(): string[] {
    const batch: string[] = [];
    let bytes = 2;
    while (this.queue.length > 0 && batch.length < MAX_POST_FRAMES) {
      const size = utf8Length(this.queue[0]) + 1;
      if (batch.length > 0 && bytes + size > MAX_POST_BYTES) {
        break;
      }
      bytes += size;
      batch.push(this.queue.shift()!);
    }
    return batch;
  }

  private async post(batch: string[]): Promise<void> {
    let status: number;
    try {
      const response = await this.fetchImpl(this.messagesUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.sendToken ?? ''}`,
          'x-switchboard-connection': this.connectionId ?? '',
        },
        body: batch.length === 1 ? batch[0] : `[${batch.join(',')}]`,
        signal: this.abort.signal,
      });
      status = response.status;
      // The answer's body (`{ accepted }`) says nothing more: let the connection go.
      void response.body?.cancel().catch(() => undefined);
    } catch {
      this.end(CloseCode.Abnormal, 'send failed'); // no-op when close() aborted it
      return;
    }
    if (status >= 200 && status < 300) {
      return;
    }
    this.queue.length = 0;
    if (status === 413) {
      // What the server does to a WebSocket frame over its limit, for a body it never read.
      this.end(CloseCode.MessageTooBig, 'message too big');
    } else if (status === 401) {
      // The connection is gone on the server: its stream is about to say why (4003, 4009…).
      this.watch(CLOSE_GRACE_MS, 'send refused (401)');
    } else {
      this.end(CloseCode.Abnormal, `send failed (${status})`);
    }
  }

  /** Ends the stream with `reason` when nothing arrives for `ms`. */
  private watch(ms: number, reason: string): void {
    this.clearTimer();
    this.lastActivity = Date.now();
    this.idleMs = ms;
    const check = () => {
      const quietMs = Date.now() - this.lastActivity;
      if (quietMs >= this.idleMs || reason !== 'stream idle') {
        this.end(CloseCode.Abnormal, reason);
      } else {
        this.timer = setTimeout(check, this.idleMs - quietMs);
      }
    };
    this.timer = setTimeout(check, ms);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private end(code: number, reason: string): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.clearTimer();
    this.queue.length = 0;
    this.abort.abort();
    const closing = this.closing;
    this.listener?.close(closing?.code ?? code, closing?.reason ?? reason);
  }
}

function parseClose(data: string): { code: number; reason: string } {
  try {
    const close = JSON.parse(data) as { code?: unknown; reason?: unknown };
    if (typeof close.code === 'number') {
      return { code: close.code, reason: typeof close.reason === 'string' ? close.reason : '' };
    }
  } catch {
    // A close event the server did not write: treated as a broken stream below.
  }
  return { code: CloseCode.Abnormal, reason: '' };
}

function parseWelcome(data: string): WelcomeData | null {
  try {
    const frame = JSON.parse(data) as { data?: WelcomeData };
    return typeof frame.data?.connectionId === 'string' ? frame.data : null;
  } catch {
    return null; // Not JSON: the connection reports it as it reports any frame.
  }
}

/** The length of `text` in UTF-8 bytes. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) {
      bytes += 1;
    } else if (code < 0x800) {
      bytes += 2;
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4; // a surrogate pair
      i += 1;
    } else {
      bytes += 3;
    }
  }
  return bytes;
}
