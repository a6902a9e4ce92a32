import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { InstanceLease } from '../redis/instance-lease';
import { RedisConnections } from '../redis/redis.connections';

const PING_TIMEOUT_MS = 1_000;

/**
 * `redis: { status }`: up while both connections are ready, a PING (to every master of a Redis
 * Cluster) answers within 1 s, and this
 * instance's state is in Redis (after Redis lost its data, not before the write-back is done).
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Inject(RedisConnections) private readonly redis: RedisConnections | null,
    @Inject(InstanceLease) private readonly lease: InstanceLease | null,
  ) {}

  get configured(): boolean {
    return this.redis !== null;
  }

  async check() {
    const session = this.indicators.check('redis');
    if (this.redis === null) {
      return session.up({ mode: 'embedded' });
    }
    if (!this.redis.up) {
      return session.down({ message: 'not connected' });
    }
    if (this.lease?.restoring) {
      return session.down({ message: 'writing this instance’s state back to Redis' });
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
