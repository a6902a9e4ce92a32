import { RedisConnections } from '../../src/redis/redis.connections';
import { testPrefix } from './redis';

/** Real Redis connections under a fresh prefix, once both are ready. */
export async function connectRedis(url: string, prefix = testPrefix()): Promise<RedisConnections> {
  const redis = new RedisConnections(url, prefix);
  const deadline = Date.now() + 5000;
  while (!redis.up) {
    if (Date.now() > deadline) {
      await redis.onApplicationShutdown();
      throw new Error(`Redis at ${url} did not become ready within 5 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return redis;
}
