import { type BeforeApplicationShutdown, Logger } from '@nestjs/common';
import type { RedisConnections } from './redis.connections';

/**
 * Renews, every `WS_HEARTBEAT_MS / 2`, a key that says this instance is alive, with a lifetime of
 * 2 × `WS_HEARTBEAT_MS`. Cluster-wide entries (connections per user, presence) name their
 * instance, and readers ignore and clean up entries whose instance has no live lease: an instance
 * killed with SIGKILL is forgotten within 2 × `WS_HEARTBEAT_MS`.
 */
export class InstanceLease implements BeforeApplicationShutdown {
  private readonly logger = new Logger(InstanceLease.name);
  private readonly timer: NodeJS.Timeout;
  private readonly lostListeners = new Set<() => void>();
  readonly ttlMs: number;

  constructor(
    private readonly redis: RedisConnections,
    private readonly instanceId: string,
    heartbeatMs: number,
  ) {
    this.ttlMs = 2 * heartbeatMs;
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(heartbeatMs / 2)));
    this.timer.unref();
    redis.onUp(() => void this.renew());
  }

  /** The key that holds an instance's lease. */
  static key(redis: RedisConnections, instanceId: string): string {
    return redis.key('instance', instanceId);
  }

  /**
   * Called when a renewal finds the lease gone (Redis was unreachable for longer than the lease):
   * other instances may have cleaned this instance's entries, so they must be written again.
   */
  onLost(listener: () => void): void {
    this.lostListeners.add(listener);
  }

  async renew(): Promise<void> {
    if (this.redis.command.status !== 'ready') {
      return;
    }
    try {
      const key = InstanceLease.key(this.redis, this.instanceId);
      const renewed = await this.redis.command.pexpire(key, this.ttlMs);
      if (renewed === 0) {
        await this.redis.command.set(key, String(Date.now()), 'PX', this.ttlMs);
        this.lostListeners.forEach((listener) => listener());
      }
    } catch (error) {
      this.logger.warn({ msg: 'instance lease not renewed', error: (error as Error).message });
    }
  }

  /** Runs before the connections close (their hook is `onApplicationShutdown`). */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    if (this.redis.command.status === 'ready') {
      await this.redis.command
        .del(InstanceLease.key(this.redis, this.instanceId))
        .catch((error: Error) =>
          this.logger.warn({ msg: 'instance lease not released', error: error.message }),
        );
    }
  }
}
