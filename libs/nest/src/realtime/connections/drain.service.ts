import { Injectable, Logger } from '@nestjs/common';
import { CloseCode, reconnectReason } from '@switchboard/protocol';
import { AppConfig } from '../../config/app-config';
import { Hub } from '../../core/hub';

/** How often the drain closes its next batch of sockets. */
const TICK_MS = 10;

/**
 * The socket side of a graceful shutdown (docs/operations.md, Graceful shutdown): stop admitting, close every socket with `1001`
 * spread evenly over `SHUTDOWN_DRAIN_MS`, each with a `reconnect in <ms>` hint spread over
 * `RECONNECT_SPREAD_MS` (so that clients do not all reconnect at once), and terminate whatever is
 * still open at the deadline.
 */
@Injectable()
export class DrainService {
  private readonly logger = new Logger(DrainService.name);

  constructor(
    private readonly hub: Hub,
    private readonly config: AppConfig,
  ) {}

  /** Readiness turns 503 and new upgrades are refused from the moment this is called. */
  async drain(deadline: number): Promise<void> {
    this.hub.startDraining();
    const sockets = [...this.hub.all()];
    const drainMs = Math.min(this.config.shutdown.drainMs, Math.max(0, deadline - Date.now()));
    this.logger.log({ msg: 'draining', connections: sockets.length, drainMs });
    const spreadMs = this.config.shutdown.reconnectSpreadMs;
    const started = Date.now();
    let closed = 0;
    while (closed < sockets.length) {
      const due =
        drainMs === 0
          ? sockets.length
          : Math.ceil(((Date.now() - started) / drainMs) * sockets.length);
      for (; closed < Math.min(due, sockets.length); closed++) {
        sockets[closed].close(CloseCode.GoingAway, reconnectHint(spreadMs));
      }
      if (closed < sockets.length) {
        await sleep(TICK_MS);
      }
    }
    while (this.hub.size > 0 && Date.now() < deadline) {
      await sleep(TICK_MS);
    }
    const stragglers = this.hub.size;
    if (stragglers > 0) {
      this.logger.warn({
        msg: 'terminating sockets still open at SHUTDOWN_TIMEOUT_MS',
        connections: stragglers,
      });
      for (const connection of this.hub.all()) {
        connection.socket.terminate();
      }
    }
  }
}

/**
 * The `1001` reason: `reconnect in <ms>`, drawn at random over `RECONNECT_SPREAD_MS`, so that the
 * drained clients reach the other instances spread over that window (the SDK waits that long).
 */
export function reconnectHint(spreadMs: number): string {
  return reconnectReason(Math.random() * spreadMs);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
