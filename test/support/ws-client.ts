import type { ClientRequest, IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import type {
  ErrorData,
  RoomJoinedData,
  ServerMessage,
  StreamPosition,
  UserInfo,
  WelcomeData,
} from '@switchboard/protocol';

export const DEFAULT_TIMEOUT_MS = 5000;

export interface Closed {
  code: number;
  reason: string;
}

/**
 * What every test client records and how a test waits on it: the frames the server sent, in
 * order, over whichever transport. Every wait has an explicit timeout.
 */
export abstract class FrameRecorder {
  readonly messages: ServerMessage[] = [];
  /** The welcome frame's data, once the client was connected. */
  welcome!: WelcomeData;
  private readonly waiters: Array<() => void> = [];
  private requests = 0;

  abstract send(value: unknown): void;
  abstract close(): void;

  protected record(message: ServerMessage): void {
    this.messages.push(message);
    this.waiters.splice(0).forEach((wake) => wake());
  }

  /** Waits for the first message (from the start) matching `predicate`, and removes it. */
  async next<T = unknown>(
    predicate: (message: ServerMessage) => boolean = () => true,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<ServerMessage<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex(predicate);
      if (index >= 0) {
        return this.messages.splice(index, 1)[0] as ServerMessage<T>;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(
          `no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  nextOfType<T = unknown>(type: string, timeoutMs?: number): Promise<ServerMessage<T>> {
    return this.next<T>((message) => message.type === type, timeoutMs);
  }

  /** Sends `type` with an id of its own and resolves with the reply's data; an `error` rejects. */
  async request<T>(type: string, data: object): Promise<T> {
    const id = `${type}-${++this.requests}`;
    this.send({ type, id, data });
    const reply = await this.next<T>((message) => message.id === id);
    if (reply.type === 'error') {
      const error = reply.data as ErrorData;
      throw new Error(`${type} refused: ${error.code}: ${error.message}`);
    }
    return reply.data as T;
  }

  /** `room.join` (recovering from `since` when given), and the `room.joined` reply's data. */
  join(room: string, since?: StreamPosition): Promise<RoomJoinedData> {
    return this.request('room.join', since ? { room, since } : { room });
  }

  /** `presence.list`: the members, sorted by id. */
  async presence(room: string): Promise<UserInfo[]> {
    const { members } = await this.request<{ members: UserInfo[] }>('presence.list', { room });
    return members.sort((x, y) => x.id.localeCompare(y.id));
  }
}

/**
 * A real `ws` client that records everything: frames, the close, or the HTTP answer that refused
 * the upgrade.
 */
export class TestClient extends FrameRecorder {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;
  /** Resolves with the HTTP status if the server refused the upgrade. */
  readonly refused: Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    super();
    this.socket = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.refused = new Promise((resolve) => {
      this.socket.once('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          this.socket.terminate();
        });
      });
    });
    this.socket.on('error', () => undefined);
    this.socket.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.record(JSON.parse((data as Buffer).toString('utf8')) as ServerMessage);
      }
    });
  }

  send(value: unknown): void {
    this.socket.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  close(): void {
    if (
      this.socket.readyState === WebSocket.OPEN ||
      this.socket.readyState === WebSocket.CONNECTING
    ) {
      this.socket.terminate();
    }
  }
}

/** Resolves with the value, or rejects after `timeoutMs` naming what was awaited. */
export function within<T>(
  promise: Promise<T>,
  what: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
    }),
  ]);
}

/** Opens a client and waits for its `welcome` frame. */
export async function connected(
  url: string,
  options: WebSocket.ClientOptions = {},
): Promise<TestClient> {
  const client = new TestClient(url, options);
  await within(client.opened, `open ${url.replace(/\?.*/, '')}`);
  client.welcome = (await client.nextOfType<WelcomeData>('welcome')).data as WelcomeData;
  return client;
}
