import {
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { AppConfig } from '../config/app-config';
export { MAX_HANDSHAKES_IN_PROGRESS } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { Hub } from './hub';

/**
 * Event-loop delay past which new handshakes are refused: the instance is behind on the work it
 * has (a fan-out, a storm of frames), and a new handshake would wait behind it.
 */
export const MAX_EVENT_LOOP_DELAY_MS = 200;
/** How often the event-loop delay is sampled (a timer's lateness). */
const LOOP_PROBE_MS = 50;
/** The shortest and longest `retryAfterMs` a refusal names. */
const MIN_RETRY_MS = 250;
const MAX_RETRY_MS = 30_000;
/** The refused clients of one second come back spread over at least this long. */
const MIN_SPREAD_MS = 1_000;
/** A service rate assumed before any has been measured (handshakes a second). */
const INITIAL_RATE = 200;

/** Why the gate refused: the `reason` label of `ws_admission_refused_total`. */
export type AdmissionRefusalReason = 'capacity' | 'age' | 'draining';
export const ADMISSION_REFUSAL_REASONS: readonly AdmissionRefusalReason[] = [
  'capacity',
  'age',
  'draining',
];

/** A refusal: answer `503`, `Retry-After: <retryAfterS>` and `{ retryAfterMs }`. */
export interface AdmissionRefusal {
  readonly refused: AdmissionRefusalReason;
  readonly retryAfterMs: number;
}

/** A handshake let in: it counts as in progress until `release` (idempotent). */
export interface AdmissionPass {
  readonly refused?: undefined;
  /** When it arrived (ms since the epoch). */
  readonly arrivedAt: number;
  /**
   * Whether its work may still start: `ADMISSION_MAX_WAIT_MS` has not passed since it arrived.
   * A pass that may not is released and counted as refused for `age`; the caller answers the
   * refusal returned.
   */
  check(): AdmissionRefusal | null;
  release(): void;
}

/** Receives each refusal, for the metrics. */
export type RefusalListener = (reason: AdmissionRefusalReason) => void;

/** `Retry-After` in whole seconds, at least 1, for a refusal's `retryAfterMs`. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/**
 * The admission gate in front of the ticket route and the WebSocket upgrade (docs/operations.md,
 * A reconnect storm): one budget of handshakes in progress for both, from the instance's own
 * measured capacity. A handshake is let in while fewer than `MAX_HANDSHAKES_IN_PROGRESS` are in
 * progress and the event loop is less than `MAX_EVENT_LOOP_DELAY_MS` behind; otherwise it is
 * refused at once, before any JWT verification, Redis round trip or log line, with a time to come
 * back. That time is sized to the backlog (the refusals of the last second, over the rate at which
 * this instance completes handshakes) and drawn at random over it, so that refused clients come
 * back spread out at about the rate they can be served, not together.
 *
 * A pass that waited longer than `ADMISSION_MAX_WAIT_MS` before its work started is refused too
 * (`check`): served that late, its client has likely given up.
 */
@Injectable()
export class AdmissionGate implements OnApplicationBootstrap, OnApplicationShutdown {
  private inProgress = 0;
  private readonly maxWaitMs: number;
  private readonly maxInProgress: number;
  /** Refusals and completions in the current and the previous second. */
  private second = 0;
  private refusedNow = 0;
  private refusedBefore = 0;
  private completedNow = 0;
  /** Whether this second ran at capacity (something was refused for it). */
  private saturated = false;
  /** Handshakes completed a second, smoothed over the seconds that had any. */
  private rate = INITIAL_RATE;
  private loopDelayMs = 0;
  private probe: NodeJS.Timeout | undefined;
  private readonly listeners: RefusalListener[] = [];

  constructor(
    config: AppConfig,
    private readonly hub: Hub,
    metrics: MetricsService,
  ) {
    this.maxWaitMs = config.admission.maxWaitMs;
    this.maxInProgress = config.limits.maxHandshakesInProgress;
    metrics.bindHandshakesInProgress(() => this.inProgress);
    this.onRefusal((reason) => metrics.admissionRefusal(reason));
  }

  /**
   * Starts measuring the event loop once the application is up: the boot's own long turns
   * (compiling, wiring modules) say nothing about the load, and measured from the constructor
   * they closed the gate to the first clients after a start.
   */
  onApplicationBootstrap(): void {
    let expected = performance.now() + LOOP_PROBE_MS;
    this.probe = setInterval(() => {
      const now = performance.now();
      // Smoothed, so one long turn (a GC) does not close the gate on its own.
      this.loopDelayMs = 0.7 * this.loopDelayMs + 0.3 * Math.max(0, now - expected);
      expected = now + LOOP_PROBE_MS;
    }, LOOP_PROBE_MS);
    this.probe.unref();
  }

  /** Handshakes in progress now: the `ws_handshakes_in_progress` gauge. */
  get handshakesInProgress(): number {
    return this.inProgress;
  }

  /** The event loop's smoothed delay, in ms. */
  get eventLoopDelayMs(): number {
    return this.loopDelayMs;
  }

  onRefusal(listener: RefusalListener): void {
    this.listeners.push(listener);
  }

  /** At a handshake's arrival: a pass, or a refusal to answer at once. Costs no I/O. */
  enter(now = Date.now()): AdmissionPass | AdmissionRefusal {
    this.tick(now);
    if (this.hub.draining) {
      return this.refuse('draining');
    }
    if (this.inProgress >= this.maxInProgress || this.loopDelayMs > MAX_EVENT_LOOP_DELAY_MS) {
      return this.refuse('capacity');
    }
    this.inProgress += 1;
    let released = false;
    const release = (completed: boolean): void => {
      if (!released) {
        released = true;
        this.inProgress -= 1;
        if (completed) {
          this.completedNow += 1;
        }
      }
    };
    return {
      arrivedAt: now,
      check: () => {
        if (released || Date.now() - now <= this.maxWaitMs) {
          return null;
        }
        release(false);
        return this.refuse('age');
      },
      release: () => release(true),
    };
  }

  onApplicationShutdown(): void {
    clearInterval(this.probe);
  }

  private refuse(reason: AdmissionRefusalReason): AdmissionRefusal {
    this.refusedNow += 1;
    this.saturated ||= reason === 'capacity';
    for (const listener of this.listeners) {
      listener(reason);
    }
    return { refused: reason, retryAfterMs: this.retryAfterMs(reason) };
  }

  /**
   * Random over the time this instance needs for the clients it refused in the last second and
   * those in progress: they come back at about the rate it serves. A draining instance's clients
   * come back soon (to another instance, through the load balancer).
   */
  private retryAfterMs(reason: AdmissionRefusalReason): number {
    if (reason === 'draining') {
      return Math.round(MIN_RETRY_MS + Math.random() * MIN_SPREAD_MS);
    }
    const backlog = Math.max(this.refusedNow, this.refusedBefore) + this.inProgress;
    const spreadMs = Math.min(MAX_RETRY_MS, Math.max(MIN_SPREAD_MS, (1000 * backlog) / this.rate));
    return Math.round(MIN_RETRY_MS + Math.random() * (spreadMs - MIN_RETRY_MS));
  }

  /** Rolls the per-second counters over, and the measured rate with them. */
  private tick(now: number): void {
    const second = Math.floor(now / 1000);
    if (second === this.second) {
      return;
    }
    const elapsed = second - this.second;
    if (elapsed === 1 && this.saturated) {
      // A second at capacity says what the instance can do.
      this.rate = Math.max(INITIAL_RATE / 4, 0.5 * this.rate + 0.5 * this.completedNow);
    } else if (elapsed === 1) {
      // One below capacity only says that it can do at least that much.
      this.rate = Math.max(this.rate, this.completedNow);
    }
    this.refusedBefore = elapsed === 1 ? this.refusedNow : 0;
    this.refusedNow = 0;
    this.completedNow = 0;
    this.saturated = false;
    this.second = second;
  }
}
