import { Inject, Injectable, Logger, type OnApplicationShutdown, Optional } from '@nestjs/common';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type Metric,
  Registry,
} from 'prom-client';
import { CLIENT_MESSAGE_TYPES, CloseCode, type TransportKind } from '@switchboard/protocol';
import { AppConfig } from '../config/app-config';

const TRANSPORTS: readonly TransportKind[] = ['websocket', 'sse'];
/** The `kind` label of `ws_connections_active`: signed-in users, anonymous visitors. */
export type SessionKind = 'user' | 'anonymous';
const SESSION_KINDS: readonly SessionKind[] = ['user', 'anonymous'];

/** The `outcome` label of `ws_connections_total` (docs/operations.md, Metrics). */
export type ConnectionOutcome =
  | 'accepted'
  | 'unauthorized'
  | 'forbidden_origin'
  | 'ip_limit'
  | 'capacity'
  | 'rate_limited'
  | 'expired'
  | 'revoked'
  | 'timeout';

export type BroadcastTarget = 'user' | 'users' | 'room' | 'all';

/** Message types counted by name; anything else is counted as `other`, to bound the labels. */
const KNOWN_TYPES: ReadonlySet<string> = new Set(CLIENT_MESSAGE_TYPES);

/**
 * Close codes counted by number: the protocol's, and 1005 (a close frame without a code). Any
 * other code a client sends is counted as `other`, to bound the labels.
 */
const KNOWN_CLOSE_CODES = new Set<number>([...Object.values(CloseCode), 1005]);

/** The spike window, as ten one-second buckets. */
const SPIKE_WINDOW_S = 10;

/**
 * The Prometheus registry Switchboard's metrics go on: the host application's (prom-client's
 * global `register` unless `SwitchboardModule` was given another), so that its own `/metrics`
 * serves them too.
 */
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/**
 * Every metric of docs/operations.md (Metrics), on the host's registry (`METRICS_REGISTRY`; a
 * registry of its own where none is given, so that two apps in one process do not share
 * counters). Hot paths count into plain numbers; the counters catch up when Prometheus scrapes.
 */
@Injectable()
export class MetricsService implements OnApplicationShutdown {
  private readonly logger = new Logger(MetricsService.name);
  readonly registry: Registry;
  /** The metrics this service put on the registry, removed again on shutdown. */
  private readonly registered: string[];

  private readonly connectionsActive: Gauge<'transport' | 'kind'>;
  private readonly connectionsTotal: Counter<'outcome' | 'transport'>;
  private readonly disconnections: Counter<'code' | 'transport'>;
  private readonly messagesReceived: Counter<'type'>;
  private readonly messagesSent: Counter;
  private readonly messageErrors: Counter<'code'>;
  private readonly connectionDuration: Histogram;
  private readonly broadcasts: Counter<'target'>;
  private readonly deliveryLagSeconds: Histogram<'path'>;
  private readonly recoveries: Counter<'result'>;
  private readonly historyReads: Counter<'purpose'>;
  private readonly ticketsIssued: Counter;
  private readonly ticketsRedeemed: Counter<'result'>;
  private readonly spike: Gauge;
  private readonly admissionRefused: Counter<'reason'>;
  private handshakesSource: () => number = () => 0;
  private readonly redisUp: Gauge<'mode'> | null;
  private readonly redisErrors: Counter<'kind'> | null;
  private readonly redisChannels: Gauge | null;
  private channelsSource: () => number = () => 0;

  /** Frames sent since the last scrape; `Connection.send` counts here, the scrape moves it on. */
  private sentSinceScrape = 0;
  private activeSource: (transport: TransportKind, kind: SessionKind) => number = () => 0;
  private redisSource: (() => boolean) | null = null;
  private readonly attemptBuckets = new Array<number>(SPIKE_WINDOW_S).fill(0);
  private readonly bucketSecond = new Array<number>(SPIKE_WINDOW_S).fill(0);
  private spiking = false;
  private readonly spikeTimer: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    @Optional() @Inject(METRICS_REGISTRY) registry?: Registry,
  ) {
    this.registry = registry ?? new Registry();
    // Made on a registry of its own, then moved onto the host's (below).
    const own = new Registry();
    const registers = [own];
    // A host that collects the process metrics itself keeps them; they are registered once.
    if (this.registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
      collectDefaultMetrics({ register: this.registry });
    }
    this.connectionsActive = new Gauge({
      name: 'ws_connections_active',
      help: 'Open connections on this instance, by transport (websocket, sse) and kind (user, anonymous)',
      labelNames: ['transport', 'kind'],
      registers,
      collect: () => {
        for (const transport of TRANSPORTS) {
          for (const kind of SESSION_KINDS) {
            this.connectionsActive.set({ transport, kind }, this.activeSource(transport, kind));
          }
        }
      },
    });
    this.connectionsTotal = new Counter({
      name: 'ws_connections_total',
      help: 'Handshakes (WebSocket upgrades and event streams) by outcome and transport',
      labelNames: ['outcome', 'transport'],
      registers,
    });
    this.disconnections = new Counter({
      name: 'ws_disconnections_total',
      help: 'Closed connections by close code and transport',
      labelNames: ['code', 'transport'],
      registers,
    });
    this.messagesReceived = new Counter({
      name: 'ws_messages_received_total',
      help: 'Client messages received, by type (unknown types count as other)',
      labelNames: ['type'],
      registers,
    });
    this.messagesSent = new Counter({
      name: 'ws_messages_sent_total',
      help: 'Frames sent to clients',
      registers,
      collect: () => {
        this.messagesSent.inc(this.sentSinceScrape);
        this.sentSinceScrape = 0;
      },
    });
    this.messageErrors = new Counter({
      name: 'ws_message_errors_total',
      help: 'Error frames sent, by error code',
      labelNames: ['code'],
      registers,
    });
    this.connectionDuration = new Histogram({
      name: 'ws_connection_duration_seconds',
      help: 'How long connections stayed open',
      buckets: [1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400],
      registers,
    });
    this.broadcasts = new Counter({
      name: 'ws_broadcasts_total',
      help: 'BroadcastService calls, by target',
      labelNames: ['target'],
      registers,
    });
    this.deliveryLagSeconds = new Histogram({
      name: 'ws_delivery_lag_seconds',
      help: 'From the publish call (or a room.message received) to its write on the sockets; path: local (published on this instance) or remote (through Redis)',
      labelNames: ['path'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.recoveries = new Counter({
      name: 'ws_recoveries_total',
      help: 'Stream recoveries asked for with since, by result (recovered, reset)',
      labelNames: ['result'],
      registers,
    });
    this.historyReads = new Counter({
      name: 'ws_history_reads_total',
      help: 'Stream history reads, by purpose (recovery, scrollback)',
      labelNames: ['purpose'],
      registers,
    });
    this.ticketsIssued = new Counter({
      name: 'ws_tickets_issued_total',
      help: 'Tickets issued',
      registers,
    });
    this.ticketsRedeemed = new Counter({
      name: 'ws_tickets_redeemed_total',
      help: 'Ticket redemptions by result (ok, or invalid: unknown, expired or used)',
      labelNames: ['result'],
      registers,
    });
    this.admissionRefused = new Counter({
      name: 'ws_admission_refused_total',
      help: 'Ticket requests and upgrades refused by the admission gate (503 with a time to come back)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['capacity', 'age', 'draining']) {
      this.admissionRefused.inc({ reason }, 0);
    }
    const handshakes: Gauge = new Gauge({
      name: 'ws_handshakes_in_progress',
      help: 'Ticket requests and upgrades admitted and not yet answered or welcomed',
      registers,
      collect: () => handshakes.set(this.handshakesSource()),
    });
    this.spike = new Gauge({
      name: 'ws_connection_spike',
      help: `1 while connection attempts in 10 s exceed CONNECTION_SPIKE_PER_10S`,
      registers,
    });
    // Only in cluster mode: without Redis there is nothing to be up or down.
    const mode = config.redisMode;
    this.redisUp = config.redisUrl
      ? new Gauge({
          name: 'redis_up',
          help: '1 while both Redis connections are ready, else 0; mode is single or cluster',
          labelNames: ['mode'],
          registers,
          collect: () => this.redisUp?.set({ mode }, this.redisSource?.() ? 1 : 0),
        })
      : null;
    this.redisErrors = config.redisUrl
      ? new Counter({
          name: 'redis_errors_total',
          help: 'Failed Redis commands and lost subscriptions, by kind (connection, timeout, cluster_down, try_again, redirect, cross_slot, subscription, other)',
          labelNames: ['kind'],
          registers,
        })
      : null;
    this.redisChannels = config.redisUrl
      ? new Gauge({
          name: 'redis_subscribed_channels',
          help: 'Pub/sub channels this instance is subscribed to (users and rooms it holds, and its own)',
          registers,
          collect: () => this.redisChannels?.set(this.channelsSource()),
        })
      : null;
    this.spike.set(0);
    this.spikeTimer = setInterval(() => this.checkSpike(Date.now()), 1000);
    this.spikeTimer.unref();
    // A module of an earlier boot in this process that never closed (a failed boot in a host's
    // tests) left its metrics behind: this instance's replace them.
    this.registered = own.getMetricsAsArray().map(({ name }) => {
      this.registry.removeSingleMetric(name);
      this.registry.registerMetric(own.getSingleMetric(name) as Metric);
      return name;
    });
  }

  /** Where `ws_handshakes_in_progress` reads its value at scrape time (the admission gate). */
  bindHandshakesInProgress(source: () => number): void {
    this.handshakesSource = source;
  }

  /** The admission gate refused a ticket request or an upgrade. */
  admissionRefusal(reason: 'capacity' | 'age' | 'draining'): void {
    this.admissionRefused.inc({ reason });
  }

  /** Where `ws_connections_active` reads its value at scrape time (the core's hub). */
  bindActiveConnections(source: (transport: TransportKind, kind: SessionKind) => number): void {
    this.activeSource = source;
  }

  /** Where `redis_subscribed_channels` reads its value at scrape time (the broker). */
  bindSubscribedChannels(source: () => number): void {
    this.channelsSource = source;
  }

  /** A Redis command failed; `kind` is one of a few (see `redisErrorKind`). */
  redisError(kind: string): void {
    this.redisErrors?.inc({ kind });
  }

  /** Where `redis_up` reads its value at scrape time (the Redis connections). */
  bindRedisUp(source: () => boolean): void {
    this.redisSource = source;
  }

  handshake(outcome: ConnectionOutcome, transport: TransportKind = 'websocket'): void {
    this.connectionsTotal.inc({ outcome, transport });
    const now = Date.now();
    const second = Math.floor(now / 1000);
    const slot = second % SPIKE_WINDOW_S;
    if (this.bucketSecond[slot] !== second) {
      this.bucketSecond[slot] = second;
      this.attemptBuckets[slot] = 0;
    }
    this.attemptBuckets[slot] += 1;
    if (!this.spiking) {
      this.checkSpike(now);
    }
  }

  closed(code: number, durationMs: number, transport: TransportKind = 'websocket'): void {
    this.disconnections.inc({
      code: KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other',
      transport,
    });
    this.connectionDuration.observe(durationMs / 1000);
  }

  received(type: string): void {
    this.messagesReceived.inc({ type: KNOWN_TYPES.has(type) ? type : 'other' });
  }

  sent(frames = 1): void {
    this.sentSinceScrape += frames;
  }

  error(code: string): void {
    this.messageErrors.inc({ code });
  }

  broadcast(target: BroadcastTarget): void {
    this.broadcasts.inc({ target });
  }

  /** A publication was written to this instance's sockets, `Date.now() - publishedAt` after it. */
  deliveryLag(path: 'local' | 'remote', publishedAt: number): void {
    this.deliveryLagSeconds.observe({ path }, Math.max(0, Date.now() - publishedAt) / 1000);
  }

  recovery(result: 'recovered' | 'reset'): void {
    this.recoveries.inc({ result });
  }

  historyRead(purpose: 'recovery' | 'scrollback'): void {
    this.historyReads.inc({ purpose });
  }

  ticketIssued(): void {
    this.ticketsIssued.inc();
  }

  ticketRedeemed(ok: boolean): void {
    this.ticketsRedeemed.inc({ result: ok ? 'ok' : 'invalid' });
  }

  onApplicationShutdown(): void {
    clearInterval(this.spikeTimer);
    // The host's registry outlives this module (a host's tests boot it again in one process).
    for (const name of this.registered) {
      this.registry.removeSingleMetric(name);
    }
  }

  /** Raises the spike gauge (with one warning) past the threshold, and clears it below. */
  private checkSpike(now: number): void {
    const second = Math.floor(now / 1000);
    let attempts = 0;
    for (let slot = 0; slot < SPIKE_WINDOW_S; slot++) {
      if (second - this.bucketSecond[slot] < SPIKE_WINDOW_S) {
        attempts += this.attemptBuckets[slot];
      }
    }
    const over = attempts > this.config.connectionSpikePer10s;
    if (over === this.spiking) {
      return;
    }
    this.spiking = over;
    this.spike.set(over ? 1 : 0);
    if (over) {
      this.logger.warn({
        msg: 'connection spike: attempts in 10 s exceed CONNECTION_SPIKE_PER_10S',
        attempts,
        threshold: this.config.connectionSpikePer10s,
      });
    } else {
      this.logger.log({ msg: 'connection spike over', attempts });
    }
  }
}
