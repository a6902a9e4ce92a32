import { retryAfterMs } from '../retry-hints';
import type { WebSocketFactory, WebSocketLike } from '../types';
import type { Transport, TransportListener } from './transport';

/** What `ws` adds to the WebSocket API; the browser's WebSocket has none of it. */
interface NodeWebSocket {
  on(
    event: 'unexpected-response',
    listener: (request: unknown, response: UpgradeResponse) => void,
  ): unknown;
  terminate(): void;
}

interface UpgradeResponse {
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
}

/** A WebSocket: the browser's, or `ws`'s in Node. */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  listener: TransportListener | null = null;
  private readonly socket: WebSocketLike;

  constructor(WebSocketImpl: WebSocketFactory, url: string) {
    const socket = new WebSocketImpl(url);
    this.socket = socket;
    socket.onopen = () => this.listener?.open();
    socket.onmessage = (event) => this.listener?.message(String(event.data));
    socket.onclose = (event) => this.listener?.close(event.code, event.reason);
    socket.onerror = () => undefined; // a close event always follows
    this.watchRefusal(socket);
  }

  send(frame: string): void {
    this.socket.send(frame);
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  /**
   * Node's `ws` reports an upgrade answered with an HTTP status through `unexpected-response`,
   * where the `Retry-After` can be read; the socket is then closed as a 1006 before open, as a
   * browser's would be.
   */
  private watchRefusal(socket: WebSocketLike): void {
    const node = socket as unknown as Partial<NodeWebSocket>;
    if (typeof node.on !== 'function' || typeof node.terminate !== 'function') {
      return;
    }
    const terminate = node.terminate.bind(node);
    node.on('unexpected-response', (_request, response) => {
      const header = response.headers?.['retry-after'];
      this.listener?.refused(
        response.statusCode ?? 0,
        retryAfterMs(Array.isArray(header) ? header[0] : header),
      );
      terminate();
    });
  }
}
