import Redis from 'ioredis';
import type { RedisMode } from '../../libs/nest/src/config/app-config';
import { RedisCluster } from './redis-cluster';
import { suiteRedis, testPrefix } from './redis';

/** The Redis backends the cluster-mode suites run against: one suite, two backends. */
export const REDIS_MODES: readonly RedisMode[] = ['single', 'cluster'];

/** A Redis the suite started: one server, or a Redis Cluster of three masters and three replicas. */
export interface RedisBackend {
  readonly mode: RedisMode;
  /** `REDIS_URL`: one URL, or the cluster's nodes comma-separated. */
  readonly url: string;
  /** The cluster, for fault tests (`null` for a single server). */
  readonly cluster: RedisCluster | null;
  /** The environment of an instance on this backend, under `prefix` (a fresh one by default). */
  env(prefix?: string): Record<string, string>;
  /**
   * Subscribers of a logical room or user channel (`r:<room>`, `u:<id>`), counted where Redis
   * keeps them: `PUBSUB NUMSUB` on the server, `PUBSUB SHARDNUMSUB` on the shard that owns it.
   */
  subscribers(prefix: string, channel: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startBackend(mode: RedisMode): Promise<RedisBackend> {
  if (mode === 'single') {
    const server = await suiteRedis();
    return {
      mode,
      url: server.url,
      cluster: null,
      env: (prefix = testPrefix()) => ({ REDIS_URL: server.url, REDIS_PREFIX: prefix }),
      async subscribers(prefix, channel) {
        const spy = new Redis(server.url);
        try {
          const [, count] = (await spy.pubsub('NUMSUB', prefix + channel)) as [string, number];
          return Number(count);
        } finally {
          spy.disconnect();
        }
      },
      stop: () => server.stop(),
    };
  }
  const cluster = await RedisCluster.start();
  return {
    mode,
    url: cluster.url,
    cluster,
    env: (prefix = testPrefix()) => ({
      REDIS_URL: cluster.url,
      REDIS_MODE: 'cluster',
      REDIS_PREFIX: prefix,
    }),
    async subscribers(prefix, channel) {
      const name = `${prefix}{${channel}}`; // a sharded channel
      const owner = await cluster.masterOf(await cluster.slotOf(name));
      return cluster.shardSubscribers(owner, name);
    },
    stop: () => cluster.stop(),
  };
}
