import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import type { ServerMessage, WelcomeData } from '@switchboard/protocol';
import { type Closed, DEFAULT_TIMEOUT_MS, FrameRecorder, within } from './ws-client';

/**
 * A Server-Sent Events client over plain `node:http` that records what the stream carries (the
 * same frames a WebSocket would, one event each) and sends its frames by
 * `POST <SSE_PATH>/messages`, one POST at a time, in order. `close()` drops the stream, as a
 * closed tab would.
 */
export class SseTestClient extends FrameRecorder {
  /** The HTTP status of the GET, once its headers came. */
  readonly status: Promise<number>;
  /** The stream's end: `event: close`'s code and reason, or 1006 when it just ended. */
  readonly closed: Promise<Closed>;
  /** The body of a GET refused with an HTTP status. */
  readonly refused: Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>;
  /** The comment lines (`: ping`) the stream carried. */
  comments = 0;
  /** The answers to the POSTs, in order. */
  readonly posts: Array<{ status: number; body: string }> = [];
  private readonly req: ClientRequest;
  private posting: Promise<void> = Promise.resolve();

  constructor(
    private readonly base: string,
    path: string,
    private readonly options: { headers?: Record<string, string>; ssePath?: string } = {},
  ) {
    super();
    let resolveStatus!: (status: number) => void;
    let resolveClosed!: (closed: Closed) => void;
    let resolveRefused!: (refused: Awaited<SseTestClient['refused']>) => void;
    this.status = new Promise((resolve) => (resolveStatus = resolve));
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    this.refused = new Promise((resolve) => (resolveRefused = resolve));
    this.req = request(`${base}${path}`, { headers: options.headers ?? {} }, (res) => {
      resolveStatus(res.statusCode ?? 0);
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          resolveRefused({ status: res.statusCode ?? 0, headers: res.headers, body });
          resolveClosed({ code: 1006, reason: '' });
        });
        return;
      }
      let buffer = '';
      let closeEvent: Closed | null = null;
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) {
            this.comments += 1;
            continue;
          }
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
          if (event === 'close') {
            closeEvent = JSON.parse(data) as Closed;
          } else {
            const message = JSON.parse(data) as ServerMessage;
            if (message.type !== event) {
              throw new Error(`event "${event}" carried a "${message.type}" frame`);
            }
            this.record(message);
          }
        }
      });
      res.on('close', () => resolveClosed(closeEvent ?? { code: 1006, reason: '' }));
    });
    this.req.on('error', () => resolveClosed({ code: 1006, reason: '' }));
    this.req.end();
  }

  get connectionId(): string {
    return this.welcome.connectionId;
  }

  send(value: unknown): void {
    const body = typeof value === 'string' ? value : JSON.stringify(value);
    this.posting = this.posting.then(() =>
      this.post(body).then((answer) => void this.posts.push(answer)),
    );
  }

  /**
   * One POST of a raw body with these headers (the connection's own by default), to this
   * client's server or, with `via`, to another instance's.
   */
  post(
    body: string,
    headers: Record<string, string> = {
      'x-switchboard-connection': this.welcome.connectionId,
      authorization: `Bearer ${this.welcome.sendToken}`,
    },
    via = this.base,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve) => {
      const post = request(
        `${via}${this.options.ssePath ?? '/sse'}/messages`,
        { method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      post.on('error', () => resolve({ status: 0, body: '' }));
      post.end(body);
    });
  }

  /** Resolves once every frame sent so far was answered. */
  async flushed(): Promise<void> {
    await this.posting;
  }

  close(): void {
    this.req.destroy();
  }
}

/** Opens a stream (`?ticket=…` or a Bearer header) and waits for its welcome. */
export async function sseConnected(
  base: string,
  path: string,
  options: { headers?: Record<string, string>; ssePath?: string } = {},
): Promise<SseTestClient> {
  const client = new SseTestClient(base, path, options);
  client.welcome = (
    await within(client.nextOfType<WelcomeData>('welcome'), 'welcome', DEFAULT_TIMEOUT_MS)
  ).data as WelcomeData;
  return client;
}
