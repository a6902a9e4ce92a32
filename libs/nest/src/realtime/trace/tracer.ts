import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Observable, type Subscriber } from 'rxjs';
import { Instance } from '../../config/instance';
import { type Connection, NO_TAP } from '../../core/connection';
import { Hub } from '../../core/hub';
import { Node } from '../../core/node';

/** The longest a trace runs. */
export const MAX_TRACE_SECONDS = 60;
/** Frames traced per second per trace on one instance; the rest are counted as dropped. */
export const MAX_TRACED_PER_SECOND = 200;

/** One traced frame, as the trace's stream carries it. */
export interface TracedFrame {
  /** When it passed, in ms since the epoch (the clock of the instance that holds the socket). */
  at: number;
  instance: string;
  connectionId: string;
  transport: Connection['transport'];
  /** `in`: from the client; `out`: to it. */
  direction: 'in' | 'out';
  /** The frame's `type`, when it could be read. */
  type: string;
  bytes: number;
  /** The frame's text: only when the trace asked for payloads. */
  payload?: string;
}

/** What one instance does for one trace. */
interface Watch {
  traceId: string;
  userId: string;
  /** The instance that streams the trace to whoever asked. */
  requester: string;
  payloads: boolean;
  until: number;
  /** Frames traced in the current second, and the second. */
  second: number;
  traced: number;
  dropped: number;
  timer: NodeJS.Timeout;
}

interface TraceStart {
  traceId: string;
  userId: string;
  requester: string;
  payloads: boolean;
  until: number;
}

/** What travels to the requester: a frame, or a count of frames not traced in one second. */
type TraceNotice = { traceId: string; frame: TracedFrame } | { traceId: string; dropped: number };

const START = 'trace.start';
const STOP = 'trace.stop';
const FRAME = 'trace.frame';
/** Every server frame starts with its type. */
const SERVER_TYPE = /^\{"type":"([^"\\]{1,64})"/;

/**
 * Follows one user's frames on every instance for `GET /admin/trace`: the instance that serves the
 * request tells every instance to watch the user (a notice on the control channel); each taps the
 * user's connections, those open and those that open during the trace, and sends each frame, its
 * size only unless payloads were asked for, to that instance, which streams it. Bounded: at most
 * `MAX_TRACE_SECONDS`, at most `MAX_TRACED_PER_SECOND` frames a second per instance.
 */
@Injectable()
export class Tracer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(Tracer.name);
  /** The watches of this instance, by user id. */
  private readonly watches = new Map<string, Watch[]>();
  /** The traces this instance streams, by trace id. */
  private readonly streams = new Map<string, Subscriber<TracedFrame | { dropped: number }>>();

  constructor(
    private readonly hub: Hub,
    private readonly node: Node,
    private readonly instance: Instance,
  ) {}

  onModuleInit(): void {
    this.node.onNotice(START, (payload) => this.watch(JSON.parse(payload) as TraceStart));
    this.node.onNotice(STOP, (traceId) => this.unwatch(traceId));
    this.node.onNotice(FRAME, (payload) => this.received(JSON.parse(payload) as TraceNotice));
  }

  onApplicationShutdown(): void {
    for (const traceId of [...this.streams.keys()]) {
      this.streams.get(traceId)?.complete();
    }
    for (const watches of [...this.watches.values()]) {
      watches.forEach((watch) => this.unwatch(watch.traceId));
    }
  }

  /**
   * The frames of the user's connections on every instance for `seconds`, then the end. Rejects
   * when the other instances cannot be told (Redis is out of reach).
   */
  async trace(
    userId: string,
    seconds: number,
    payloads: boolean,
  ): Promise<Observable<TracedFrame | { dropped: number }>> {
    const traceId = randomUUID();
    const until = Date.now() + seconds * 1000;
    const start: TraceStart = { traceId, userId, requester: this.instance.id, payloads, until };
    const frames = new Observable<TracedFrame | { dropped: number }>((subscriber) => {
      this.streams.set(traceId, subscriber);
      const timer = setTimeout(() => subscriber.complete(), seconds * 1000);
      return () => {
        clearTimeout(timer);
        this.streams.delete(traceId);
        this.node.notice(STOP, traceId).catch(() => undefined); // each watch ends by itself at `until`
      };
    });
    await this.node.notice(START, JSON.stringify(start));
    return frames;
  }

  /** Whether this instance follows the user for a trace now. */
  watching(userId: string): boolean {
    return this.watches.has(userId);
  }

  /** Taps a new connection when its user is being traced. */
  attach(connection: Connection): void {
    if (this.watches.has(connection.userId)) {
      connection.tap = (direction, frame) => this.record(connection, direction, frame);
    }
  }

  private watch(start: TraceStart): void {
    const delay = start.until - Date.now();
    if (delay <= 0) {
      return;
    }
    const watch: Watch = {
      ...start,
      second: 0,
      traced: 0,
      dropped: 0,
      timer: setTimeout(() => this.unwatch(start.traceId), delay),
    };
    watch.timer.unref();
    const watches = this.watches.get(start.userId) ?? [];
    watches.push(watch);
    this.watches.set(start.userId, watches);
    this.hub.ofUser(start.userId).forEach((connection) => this.attach(connection));
  }

  private unwatch(traceId: string): void {
    for (const [userId, watches] of this.watches) {
      const kept = watches.filter((watch) => watch.traceId !== traceId);
      if (kept.length === watches.length) {
        continue;
      }
      watches.filter((watch) => watch.traceId === traceId).forEach((w) => clearTimeout(w.timer));
      if (kept.length > 0) {
        this.watches.set(userId, kept);
      } else {
        this.watches.delete(userId);
        this.hub.ofUser(userId).forEach((connection) => (connection.tap = NO_TAP));
      }
    }
  }

  private record(connection: Connection, direction: 'in' | 'out', frame: string | Buffer): void {
    const watches = this.watches.get(connection.userId);
    if (watches === undefined) {
      connection.tap = NO_TAP;
      return;
    }
    const text = typeof frame === 'string' ? frame : frame.toString('utf8');
    const now = Date.now();
    for (const watch of watches) {
      const second = Math.floor(now / 1000);
      if (second !== watch.second) {
        if (watch.dropped > 0) {
          this.send(watch, { traceId: watch.traceId, dropped: watch.dropped });
        }
        watch.second = second;
        watch.traced = 0;
        watch.dropped = 0;
      }
      if (++watch.traced > MAX_TRACED_PER_SECOND) {
        watch.dropped += 1;
        continue;
      }
      const traced: TracedFrame = {
        at: now,
        instance: this.instance.id,
        connectionId: connection.id,
        transport: connection.transport,
        direction,
        type: typeOf(direction, text),
        bytes: Buffer.byteLength(text),
        ...(watch.payloads ? { payload: text } : {}),
      };
      this.send(watch, { traceId: watch.traceId, frame: traced });
    }
  }

  private send(watch: Watch, notice: TraceNotice): void {
    if (watch.requester === this.instance.id) {
      this.received(notice);
      return;
    }
    this.node
      .noticeTo(watch.requester, FRAME, JSON.stringify(notice))
      .catch((error: unknown) =>
        this.logger.debug({ msg: 'traced frame not sent', traceId: watch.traceId, err: error }),
      );
  }

  private received(notice: TraceNotice): void {
    const stream = this.streams.get(notice.traceId);
    if (stream !== undefined) {
      stream.next('frame' in notice ? notice.frame : { dropped: notice.dropped });
    }
  }
}

/** A frame's `type`: read at the start of a server frame, parsed out of a client's. */
function typeOf(direction: 'in' | 'out', text: string): string {
  if (direction === 'out') {
    return SERVER_TYPE.exec(text)?.[1] ?? 'unknown';
  }
  try {
    const { type } = JSON.parse(text) as { type?: unknown };
    return typeof type === 'string' ? type.slice(0, 64) : 'unknown';
  } catch {
    return 'unreadable';
  }
}
