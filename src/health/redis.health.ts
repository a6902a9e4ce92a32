import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { RedisConnections } from '../redis/redis.connections';

const PING_TIMEOUT_MS = 1_000;

/** `redis: { status }`: up while both connections are ready and a PING answers within 1 s. */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Inject(RedisConnections) private readonly redis: RedisConnections | null,
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
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.command.ping(),
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
