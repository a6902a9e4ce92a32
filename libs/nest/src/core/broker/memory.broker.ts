import { randomToken } from '../../common/random';
import type { OnApplicationShutdown } from '@nestjs/common';
import type {
  Broker,
  BrokerHandler,
  HistoryQuery,
  Publication,
  StreamHistory,
  StreamOptions,
  StreamPosition,
} from './broker.interface';

/** One stream's state: a ring of its last publications. */
interface Stream {
  epoch: string;
  offset: number;
  /** The kept publications, oldest first; at most `size`. */
  log: Publication[];
  /** When the log expires (`ttlMs` after the last publication) and when the stream does. */
  logUntil: number;
  until: number;
}

const SWEEP_INTERVAL_MS = 60_000;

/**
 * The embedded (single-instance) broker: a publication goes to this instance's handlers alone,
 * and streams live in this process (a restart starts every stream on a new epoch).
 */
export class MemoryBroker implements Broker, OnApplicationShutdown {
  readonly available = true;
  private readonly interest = new Set<string>();
  private readonly handlers: BrokerHandler[] = [];
  private readonly streams = new Map<string, Stream>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly options: StreamOptions,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  get subscriptions(): number {
    return this.interest.size;
  }

  publish(channel: string, message: string): Promise<void> {
    this.deliver(channel, message, 0, '');
    return Promise.resolve();
  }

  publishToStream(channel: string, message: string): Promise<StreamPosition>;
  publishToStream(
    channel: string,
    message: string,
    existingOnly: boolean,
  ): Promise<StreamPosition | null>;
  publishToStream(
    channel: string,
    message: string,
    existingOnly = false,
  ): Promise<StreamPosition | null> {
    if (existingOnly && !this.exists(channel)) {
      this.deliver(channel, message, 0, '');
      return Promise.resolve(null);
    }
    const stream = this.stream(channel);
    const offset = ++stream.offset;
    stream.log.push({ offset, message });
    if (stream.log.length > this.options.size) {
      stream.log.shift();
    }
    const now = this.now();
    stream.logUntil = now + this.options.ttlMs;
    stream.until = now + this.options.metaTtlMs;
    this.deliver(channel, message, offset, stream.epoch);
    return Promise.resolve({ epoch: stream.epoch, offset });
  }

  history(channel: string, query: HistoryQuery): Promise<StreamHistory> {
    const stream = this.stream(channel);
    stream.until = Math.max(stream.until, this.now() + this.options.metaTtlMs);
    const { log } = stream;
    let publications: Publication[];
    if (query.after !== undefined) {
      const first = log.findIndex((publication) => publication.offset > query.after!);
      publications = first < 0 ? [] : log.slice(first, first + query.limit);
    } else {
      const before = query.before ?? Infinity;
      const end = log.filter((publication) => publication.offset < before).length;
      publications = log.slice(Math.max(0, end - query.limit), end);
    }
    return Promise.resolve({
      position: { epoch: stream.epoch, offset: stream.offset },
      publications,
    });
  }

  subscribe(channel: string): Promise<void> {
    this.interest.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.interest.delete(channel);
    return Promise.resolve();
  }

  onMessage(handler: BrokerHandler): void {
    this.handlers.push(handler);
  }

  /** Nothing is ever lost in-process: never called. */
  onResubscribed(): void {}

  /** Stops the sweeper; the streams go with the process. */
  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
  }

  private deliver(channel: string, message: string, offset: number, epoch: string): void {
    if (this.interest.has(channel)) {
      for (const handler of this.handlers) {
        handler(channel, message, offset, epoch);
      }
    }
  }

  /** The channel's live stream: expired parts are dropped first, a missing one gets an epoch. */
  private exists(channel: string): boolean {
    const stream = this.streams.get(channel);
    return stream !== undefined && stream.until > this.now();
  }

  private stream(channel: string): Stream {
    const now = this.now();
    let stream = this.streams.get(channel);
    if (stream !== undefined && stream.until <= now) {
      stream = undefined;
    }
    if (stream === undefined) {
      stream = { epoch: newEpoch(), offset: 0, log: [], logUntil: 0, until: now };
      this.streams.set(channel, stream);
    } else if (stream.logUntil <= now && stream.log.length > 0) {
      stream.log = [];
    }
    return stream;
  }

  private sweep(): void {
    const now = this.now();
    for (const [channel, stream] of this.streams) {
      if (stream.until <= now) {
        this.streams.delete(channel);
      } else if (stream.logUntil <= now) {
        stream.log = [];
      }
    }
  }
}

/** A stream's epoch: random, so that no two lives of a stream share one. */
export function newEpoch(): string {
  return randomToken(6);
}
