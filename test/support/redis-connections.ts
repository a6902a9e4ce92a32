import type { RedisMode } from '../../libs/nest/src/config/app-config';
import { RedisConnections } from '../../libs/nest/src/redis/redis.connections';
import { testPrefix } from './redis';
import { waitUntil } from './wait';

/** Real Redis connections under a fresh prefix, once both are ready. */
export async function connectRedis(
  url: string,
  prefix = testPrefix(),
  mode: RedisMode = 'single',
): Promise<RedisConnections> {
  const redis = new RedisConnections(url, prefix, undefined, mode);
  try {
    await waitUntil(() => redis.up, `Redis at ${url} ready`);
  } catch (error) {
    await redis.onApplicationShutdown();
    throw error;
  }
  return redis;
}
