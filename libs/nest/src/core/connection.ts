import { CloseCode, CloseReason } from '@switchboard/protocol';
import type { StreamPosition, TransportKind } from '@switchboard/protocol';
import type { Session } from './session';
import type { MetricsService } from '../metrics/metrics.service';
import { FloodGuard } from './flood-guard';
import { type Corkable, WriteBatch } from './write-batch';

/** One per process: the frames of one event-loop turn to one socket leave in one write. */
const writeBatch = new WriteBatch();
/** ws sends a Buffer as a text frame with this. */
const TEXT = { binary: false } as const;

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
 * What a connection needs of its transport: a `ws` WebSocket as it is, or a Server-Sent Events
 * stream whose client sends its frames by HTTP POST (`SseTransport`), without touching rooms,
 * presence or the broker. A transport with `ping` must hear a pong before the next heartbeat; one
 * without (SSE cannot carry a pong) gets `keepAlive` instead, and its client's application `ping`
 * proves it alive.
 */
export interface Transport {
  readonly readyState: number;
  /** Bytes queued and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Sends a text frame; a Buffer holds its UTF-8 bytes (one Buffer may go to many sockets). */
  send(frame: string | Buffer, options: typeof TEXT): void;
  close(code: number, reason: string): void;
  /** Drops the link at once, without a closing handshake. */
  terminate(): void;
  ping?(): void;
  keepAlive?(): void;
}

/**
 * Sees every frame of a connection, to it (`out`) and from it (`in`): `GET /admin/trace` taps the
 * connections of the user it follows. Untraced connections have `NO_TAP`.
 */
export type FrameTap = (direction: 'in' | 'out', frame: string | Buffer) => void;
export const NO_TAP: FrameTap = () => undefined;

/** One authenticated client held by this instance. */
export class Connection {
  /** Set by the heartbeat when it pings, cleared by the pong. */
  awaitingPong = false;
  /** The scheduler tick of this socket's next session event, 0 when none; see SessionLifecycle. */
  sessionTick = 0;
  /** Whether `session.expiring` went out for the current session. */
  expiryWarned = false;
  readonly flood: FloodGuard;
  tap: FrameTap = NO_TAP;
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
   * Streams being recovered, by channel: their live publications wait here until the history has
   * been sent, so that the client sees each offset once, in order.
   */
  private held: Map<string, Held[]> | null = null;
  /**
   * Streams recovered up to a position, by channel, until a live publication passes it: the pub/sub
   * copies of what the position already counted may still be on their way, and are dropped.
   */
  private floors: Map<string, StreamPosition> | null = null;

  readonly id: string;
  readonly socket: Transport;
  readonly transport: TransportKind;
  session: Session;
  readonly ip: string;
  readonly connectedAt: number;
  private readonly sendBufferMaxBytes: number;
  private readonly metrics: Pick<MetricsService, 'sent'>;
  /** The byte stream under the transport, corked while a turn's frames gather; see WriteBatch. */
  private readonly wire: Corkable | null;
  private corked = false;

  constructor(options: {
    id: string;
    socket: Transport;
    /** @default 'websocket' */
    transport?: TransportKind;
    /** The transport's byte stream, when frames to it may be batched (a real socket). */
    wire?: Corkable;
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
    this.transport = options.transport ?? 'websocket';
    this.wire = options.wire ?? null;
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
   * Sends an already-serialized frame (a string, or its UTF-8 bytes when the same frame goes to
   * many sockets). A client whose unsent bytes would pass `WS_SEND_BUFFER_MAX_BYTES` is closed
   * with `4008` instead, so it cannot grow our memory.
   */
  send(frame: string | Buffer): boolean {
    if (this.socket.readyState !== TransportState.Open) {
      return false;
    }
    // Bytes, as `bufferedAmount` counts them: a string's length counts UTF-16 units, a third of
    // the bytes of CJK text.
    const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    if (this.socket.bufferedAmount + bytes > this.sendBufferMaxBytes) {
      this.close(CloseCode.SlowConsumer, CloseReason.SlowConsumer);
      return false;
    }
    if (this.wire !== null && !this.corked) {
      this.corked = true;
      writeBatch.hold(this);
    }
    this.socket.send(frame, TEXT);
    this.metrics.sent();
    this.tap('out', frame);
    return true;
  }

  /** For the write batch: corks the wire until `uncork`. */
  cork(): void {
    this.wire!.cork();
  }

  /** For the write batch, at the end of the turn: what this turn sent leaves in one write. */
  uncork(): void {
    this.corked = false;
    this.wire!.uncork();
  }

  /**
   * Delivers a stream's live publication, or holds it while the stream is being recovered; one
   * that the client's position already counts is dropped.
   */
  publish(channel: string, epoch: string, offset: number, frame: string | Buffer): void {
    const queue = this.held?.get(channel);
    if (queue !== undefined) {
      queue.push({ epoch, offset, frame });
      return;
    }
    const floor = this.floors?.get(channel);
    if (floor !== undefined) {
      if (epoch === floor.epoch && offset <= floor.offset) {
        return; // counted by the position the client was given: it has it, or reloads it
      }
      this.clearFloor(channel); // the pub/sub has caught up with the position (or the epoch moved)
    }
    this.send(frame);
  }

  /** From now on the channel's live publications wait until `release`. */
  hold(channel: string): void {
    (this.held ??= new Map()).set(channel, []);
    this.clearFloor(channel);
  }

  /**
   * Ends the hold once the client has everything up to `position`: sends what waited of the
   * channel's publications after it, in order, delivers live ones directly again, and drops late
   * copies of publications up to it.
   */
  release(channel: string, position: StreamPosition): void {
    let last = position.offset;
    for (const { epoch, offset, frame } of this.unhold(channel)) {
      if (epoch !== position.epoch || offset > last) {
        this.send(frame);
        last = epoch === position.epoch ? offset : last;
      }
    }
    (this.floors ??= new Map()).set(channel, position);
  }

  /** Ends the hold without a position (it could not be read): what waited goes out as it is. */
  releaseAll(channel: string): void {
    for (const { frame } of this.unhold(channel)) {
      this.send(frame);
    }
  }

  /** Forgets the channel: what waited is dropped (the socket did not enter the stream, or left). */
  forget(channel: string): void {
    this.unhold(channel);
    this.clearFloor(channel);
  }

  private unhold(channel: string): Held[] {
    const queue = this.held?.get(channel);
    if (queue === undefined) {
      return [];
    }
    this.held!.delete(channel);
    if (this.held!.size === 0) {
      this.held = null;
    }
    return queue;
  }

  private clearFloor(channel: string): void {
    if (this.floors?.delete(channel) && this.floors.size === 0) {
      this.floors = null;
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

/** A live publication that waits while its stream is being recovered. */
interface Held {
  epoch: string;
  offset: number;
  frame: string | Buffer;
}
