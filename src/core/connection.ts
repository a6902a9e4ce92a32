import { CloseCode } from '@app/protocol';
import type { Session } from './session';
import type { MetricsService } from '../metrics/metrics.service';
import { FloodGuard } from './flood-guard';

/**
 * Thrown by work that finds its connection closed after an await: the work is skipped, and the
 * cleanup that runs once the socket's queue is idle undoes whatever had been done.
 */
export class ConnectionClosedError extends Error {
  constructor() {
    super('connection closed while its message was handled');
    this.name = 'ConnectionClosedError';
  }
}

/** The transport's states, with the WebSocket API's numbers. */
export const TransportState = { Connecting: 0, Open: 1, Closing: 2, Closed: 3 } as const;

/**
 * What a connection needs of its transport: a `ws` WebSocket as it is, or (later) another
 * transport such as Server-Sent Events plus HTTP POST, without touching rooms, presence or the
 * broker. `ping` is optional: a transport without one is kept alive by the application `ping`.
 */
export interface Transport {
  readonly readyState: number;
  /** Bytes queued and not yet handed to the network. */
  readonly bufferedAmount: number;
  send(frame: string): void;
  close(code: number, reason: string): void;
  /** Drops the link at once, without a closing handshake. */
  terminate(): void;
  ping?(): void;
}

/** One authenticated client held by this instance. */
export class Connection {
  /** Set by the heartbeat when it pings, cleared by the pong. */
  awaitingPong = false;
  /** The scheduler tick of this socket's next session event, 0 when none; see SessionLifecycle. */
  sessionTick = 0;
  /** Whether `session.expiring` went out for the current session. */
  expiryWarned = false;
  readonly flood: FloodGuard;
  /** Made on the first join: most sockets never join a room. */
  private joined: Set<string> | null = null;
  /**
   * The close code this server sent, when it closed the socket (or ws did, for a protocol
   * violation): what metrics and logs record, rather than the 1006 of a client that never answers.
   */
  closeCodeSent: number | null = null;
  /** The tail of this socket's message handling: messages are handled one at a time, in order. */
  private tail: Promise<void> | null = null;
  /**
   * Streams being recovered, by channel: their live publications wait here (offset and frame)
   * until the history has been sent, so that the client sees each offset once, in order.
   */
  private held: Map<string, Array<[offset: number, frame: string]>> | null = null;

  readonly id: string;
  readonly socket: Transport;
  session: Session;
  readonly ip: string;
  readonly connectedAt: number;
  private readonly sendBufferMaxBytes: number;
  private readonly metrics: Pick<MetricsService, 'sent'>;

  constructor(options: {
    id: string;
    socket: Transport;
    session: Session;
    ip: string;
    connectedAt: number;
    sendBufferMaxBytes: number;
    messagesPerWindow: number;
    messageWindowMs: number;
    metrics: Pick<MetricsService, 'sent'>;
  }) {
    this.id = options.id;
    this.socket = options.socket;
    this.session = options.session;
    this.ip = options.ip;
    this.connectedAt = options.connectedAt;
    this.sendBufferMaxBytes = options.sendBufferMaxBytes;
    this.metrics = options.metrics;
    this.flood = new FloodGuard(options.messagesPerWindow, options.messageWindowMs);
  }

  /** Rooms joined; the hub keeps the reverse index. */
  get rooms(): ReadonlySet<string> {
    return this.joined ?? NO_ROOMS;
  }

  addRoom(room: string): void {
    (this.joined ??= new Set()).add(room);
  }

  removeRoom(room: string): void {
    this.joined?.delete(room);
  }

  /**
   * Runs `task` after every task queued before it. A synchronous task with nothing queued runs at
   * once, without allocating. Tasks must not throw or reject.
   */
  serial(task: () => void | Promise<void>): void {
    if (this.tail === null) {
      const result = task();
      if (result !== undefined) {
        this.settle(result);
      }
      return;
    }
    this.settle(this.tail.then(task));
  }

  /**
   * Resolves once every task queued so far has finished. After a close the queue only shrinks
   * (handlers skip closed connections), so cleanup that awaits this sees the socket's final state.
   */
  idle(): Promise<void> {
    return this.tail ?? Promise.resolve();
  }

  private settle(work: Promise<void>): void {
    const tail: Promise<void> = work.then(() => {
      if (this.tail === tail) {
        this.tail = null;
      }
    });
    this.tail = tail;
  }

  get userId(): string {
    return this.session.userId;
  }

  get open(): boolean {
    return this.socket.readyState === TransportState.Open;
  }

  /**
   * Sends an already-serialized frame. A client whose unsent bytes would pass
   * `WS_SEND_BUFFER_MAX_BYTES` is closed with `4008` instead, so it cannot grow our memory.
   */
  send(frame: string): boolean {
    if (this.socket.readyState !== TransportState.Open) {
      return false;
    }
    if (this.socket.bufferedAmount + frame.length > this.sendBufferMaxBytes) {
      this.close(CloseCode.SlowConsumer, 'slow consumer');
      return false;
    }
    this.socket.send(frame);
    this.metrics.sent();
    return true;
  }

  /** Delivers a stream's live publication, or holds it while the stream is being recovered. */
  publish(channel: string, offset: number, frame: string): void {
    const queue = this.held?.get(channel);
    if (queue === undefined) {
      this.send(frame);
    } else {
      queue.push([offset, frame]);
    }
  }

  /** From now on the channel's live publications wait until `release`. */
  hold(channel: string): void {
    (this.held ??= new Map()).set(channel, []);
  }

  /**
   * Sends what waited of the channel's publications after offset `after` (what the client has
   * now), in order, and delivers live ones directly again.
   */
  release(channel: string, after = Infinity): void {
    const queue = this.held?.get(channel);
    if (queue === undefined) {
      return;
    }
    this.held!.delete(channel);
    if (this.held!.size === 0) {
      this.held = null;
    }
    let last = after;
    for (const [offset, frame] of queue) {
      if (offset > last) {
        this.send(frame);
        last = offset;
      }
    }
  }

  close(code: number, reason: string): void {
    const state = this.socket.readyState;
    if (state === TransportState.Open || state === TransportState.Connecting) {
      this.closeCodeSent ??= code;
      this.socket.close(code, reason);
    }
  }

  /** Throws `ConnectionClosedError` when the socket is no longer open (call after an await). */
  assertOpen(): void {
    if (!this.open) {
      throw new ConnectionClosedError();
    }
  }
}

const NO_ROOMS: ReadonlySet<string> = new Set();
