import type { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { Lease } from '../redis/lease';
import type { RedisConnections } from '../redis/redis.connections';

const PING_TIMEOUT_MS = 1_000;

/**
 * `redis: { status }`, the Redis side of readiness. Inject it by this class: `HealthModule` provides
 * `RedisConnectionsHealthIndicator` in cluster mode and `EmbeddedRedisHealthIndicator` otherwise.
 */
export abstract class RedisHealthIndicator {
  /** Whether there is Redis to check: `GET /health/ready` leaves the indicator out otherwise. */
  abstract readonly configured: boolean;

  abstract check(): Promise<HealthIndicatorResult<'redis'>>;
}

/**
 * Up while both connections are ready, a PING (to every master of a Redis Cluster) answers within
 * 1 s, this instance's state is in Redis (after Redis lost its data, not before the write-back is
 * done), and no subscription is known lost (a Redis Cluster shard whose slots moved, until its
 * channels are subscribed again).
 */
export class RedisConnectionsHealthIndicator extends RedisHealthIndicator {
  readonly configured = true;

  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly redis: RedisConnections,
    private readonly lease: Lease,
  ) {
    super();
  }

  async check() {
    const session = this.indicators.check('redis');
    if (!this.redis.up) {
      return session.down({ message: 'not connected' });
    }
    if (this.lease.restoring) {
      return session.down({ message: 'writing this instance’s state back to Redis' });
    }
    const subscriptions = this.redis.subscriptionProblem;
    if (subscriptions !== null) {
      return session.down({ message: subscriptions });
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.ping(), // in cluster mode, every master
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('PING timed out')), PING_TIMEOUT_MS);
        }),
      ]);
      return session.up();
    } catch (error) {
      return session.down({ message: (error as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Embedded mode (no `REDIS_URL`): no Redis, always up, with `mode: 'embedded'`. */
export class EmbeddedRedisHealthIndicator extends RedisHealthIndicator {
  readonly configured = false;

  constructor(private readonly indicators: HealthIndicatorService) {
    super();
  }

  check() {
    return Promise.resolve(this.indicators.check('redis').up({ mode: 'embedded' }));
  }
}
