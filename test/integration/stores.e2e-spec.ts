import { ThrottlerStorageService } from '@nestjs/throttler';
import { Clock } from '../../libs/nest/src/config/clock';
import { MemoryRevocationStore } from '../../libs/nest/src/auth/memory-revocation.store';
import { RedisRevocationStore } from '../../libs/nest/src/auth/redis-revocation.store';
import { MemoryRateLimiter } from '../../libs/nest/src/rate-limit/memory-rate-limiter.store';
import { RedisRateLimiter } from '../../libs/nest/src/rate-limit/redis-rate-limiter.store';
import { RedisThrottlerStorage } from '../../libs/nest/src/rate-limit/redis-throttler.store';
import { InstanceLease } from '../../libs/nest/src/redis/instance-lease';
import { MemoryConnectionRegistry } from '../../libs/nest/src/realtime/connections/memory-connection-registry.store';
import { MemoryPresenceStore } from '../../libs/nest/src/realtime/presence/memory-presence.store';
import { RedisPresenceStore } from '../../libs/nest/src/realtime/presence/redis-presence.store';
import { RedisConnectionRegistry } from '../../libs/nest/src/realtime/connections/redis-connection-registry.store';
import { MemoryTicketStore } from '../../libs/nest/src/tickets/memory-ticket.store';
import { RedisTicketStore } from '../../libs/nest/src/tickets/redis-ticket.store';
import { describeConnectionRegistry } from '../contracts/connection-registry.contract';
import { describePresenceStore } from '../contracts/presence-store.contract';
import { describeRateLimiter } from '../contracts/rate-limiter.contract';
import { describeRevocationStore } from '../contracts/revocation-store.contract';
import { describeTicketStore } from '../contracts/ticket-store.contract';
import {
  CONTRACT_THROTTLER,
  describeThrottlerStorage,
} from '../contracts/throttler-storage.contract';
import { testPrefix } from '../support/redis';
import { REDIS_MODES, type RedisBackend, startBackend } from '../support/backends';
import type { RedisMode } from '../../libs/nest/src/config/app-config';
import { connectRedis } from '../support/redis-connections';
import { waitUntil } from '../support/app';
import { CONTRACT_STREAMS, describeBroker } from '../contracts/broker.contract';
import { MemoryBroker } from '../../libs/nest/src/core/broker/memory.broker';
import { RedisBroker } from '../../libs/nest/src/core/broker/redis.broker';
import type { RedisConnections } from '../../libs/nest/src/redis/redis.connections';

/**
 * One contract suite per store, run against the in-memory implementation and the Redis one, the
 * latter on one Redis server and on a Redis Cluster (three masters, three replicas).
 */
const backends = new Map<RedisMode, RedisBackend>();
beforeAll(async () => {
  for (const mode of REDIS_MODES) {
    backends.set(mode, await startBackend(mode));
  }
}, 60_000);
afterAll(() => Promise.all([...backends.values()].map((backend) => backend.stop())));

const redisUrl = (): string => backends.get('single')!.url;
const connect = (mode: RedisMode, prefix = testPrefix()): Promise<RedisConnections> =>
  connectRedis(backends.get(mode)!.url, prefix, mode);
const label = (mode: RedisMode): string => (mode === 'single' ? 'redis' : 'redis cluster');

describeTicketStore('memory', () => {
  const store = new MemoryTicketStore(new Clock());
  return { store, close: () => store.onApplicationShutdown() };
});
describeRateLimiter('memory', () => {
  const limiter = new MemoryRateLimiter();
  return { limiter, close: () => limiter.onApplicationShutdown() };
});
describeThrottlerStorage('memory', () => {
  const storage = new ThrottlerStorageService();
  return { storage, close: () => storage.onApplicationShutdown() };
});
describeRevocationStore('memory', () => {
  const store = new MemoryRevocationStore();
  return { store, close: () => store.onApplicationShutdown() };
});
describeConnectionRegistry('memory', () => ({
  registry: new MemoryConnectionRegistry(),
  close: () => undefined,
}));
describePresenceStore('memory', () => ({
  store: new MemoryPresenceStore(),
  close: () => undefined,
}));
describeBroker('memory', () => {
  const broker = new MemoryBroker(CONTRACT_STREAMS);
  return { broker, close: () => broker.onApplicationShutdown() };
});

for (const mode of REDIS_MODES) {
  describeTicketStore(label(mode), async () => {
    const redis = await connect(mode);
    return { store: new RedisTicketStore(redis), close: () => redis.onApplicationShutdown() };
  });
  describeRateLimiter(label(mode), async () => {
    const redis = await connect(mode);
    return { limiter: new RedisRateLimiter(redis), close: () => redis.onApplicationShutdown() };
  });
  describeThrottlerStorage(label(mode), async () => {
    const redis = await connect(mode);
    const local = new ThrottlerStorageService();
    return {
      storage: new RedisThrottlerStorage(redis, new Set([CONTRACT_THROTTLER]), local),
      close: async () => {
        local.onApplicationShutdown();
        await redis.onApplicationShutdown();
      },
    };
  });
  describeRevocationStore(label(mode), async () => {
    const redis = await connect(mode);
    return { store: new RedisRevocationStore(redis), close: () => redis.onApplicationShutdown() };
  });
  describeConnectionRegistry(label(mode), async () => {
    const redis = await connect(mode);
    return {
      registry: new RedisConnectionRegistry(redis),
      close: () => redis.onApplicationShutdown(),
    };
  });
  describePresenceStore(label(mode), async () => {
    const redis = await connect(mode);
    return { store: new RedisPresenceStore(redis), close: () => redis.onApplicationShutdown() };
  });
  describeBroker(label(mode), async () => {
    const redis = await connect(mode);
    return {
      broker: new RedisBroker(redis, 'i1', CONTRACT_STREAMS),
      close: () => redis.onApplicationShutdown(),
    };
  });
}

describe.each(REDIS_MODES)('RedisBroker across instances (%s)', (mode) => {
  it('delivers to every other subscribed instance once, in order, and to nobody twice', async () => {
    const prefix = testPrefix();
    const [one, two, three] = await Promise.all([1, 2, 3].map(() => connect(mode, prefix)));
    try {
      const brokers = [
        new RedisBroker(one, 'one', CONTRACT_STREAMS),
        new RedisBroker(two, 'two', CONTRACT_STREAMS),
        new RedisBroker(three, 'three', CONTRACT_STREAMS),
      ];
      const heard = brokers.map(() => [] as string[]);
      brokers.forEach((broker, i) => broker.onMessage((_, message) => heard[i].push(message)));
      await brokers[0].subscribe('room');
      await brokers[1].subscribe('room'); // the third is not interested
      for (let i = 0; i < 10; i++) {
        await brokers[0].publish('room', `m${i}`);
      }
      await waitUntil(() => heard[1].length === 10, 'the peer to hear all ten');
      const expected = Array.from({ length: 10 }, (_, i) => `m${i}`);
      await brokers[2].publish('room', 'from three'); // not subscribed, still reaches the others
      await waitUntil(
        () => heard[0].length === 11 && heard[1].length === 11,
        'both subscribers to hear the third',
      );
      expect(heard[0]).toEqual([...expected, 'from three']); // its own once, no echo
      expect(heard[1]).toEqual([...expected, 'from three']);
      expect(heard[2]).toEqual([]);
    } finally {
      await Promise.all([one, two, three].map((redis) => redis.onApplicationShutdown()));
    }
  });
});

describe.each(REDIS_MODES)('RedisThrottlerStorage across instances (%s)', (mode) => {
  it('counts a cluster-wide throttler once for all instances, any other in each instance', async () => {
    const prefix = testPrefix();
    const [one, two] = await Promise.all([1, 2].map(() => connect(mode, prefix)));
    const locals = [new ThrottlerStorageService(), new ThrottlerStorageService()];
    try {
      const [a, b] = [one, two].map(
        (redis, i) => new RedisThrottlerStorage(redis, new Set(['shared']), locals[i]),
      );
      const hit = (storage: RedisThrottlerStorage, throttler: string) =>
        storage.increment('tracker', 60_000, 2, 60_000, throttler);
      expect((await hit(a, 'shared')).isBlocked).toBe(false);
      expect((await hit(b, 'shared')).isBlocked).toBe(false);
      expect(await hit(a, 'shared')).toMatchObject({ totalHits: 3, isBlocked: true });
      expect(await hit(b, 'shared')).toMatchObject({ isBlocked: true });

      await hit(a, 'own');
      await hit(a, 'own');
      expect(await hit(a, 'own')).toMatchObject({ totalHits: 3, isBlocked: true });
      expect(await hit(b, 'own')).toMatchObject({ totalHits: 1, isBlocked: false });
    } finally {
      locals.forEach((local) => local.onApplicationShutdown());
      await Promise.all([one, two].map((r) => r.onApplicationShutdown()));
    }
  });
});

describe.each(REDIS_MODES)('RedisBroker streams across instances (%s)', (mode) => {
  it('numbers two instances’ concurrent publications without gap, and each hears them in order', async () => {
    const prefix = testPrefix();
    const [one, two] = await Promise.all([1, 2].map(() => connect(mode, prefix)));
    try {
      const options = { size: 1000, ttlMs: 60_000, metaTtlMs: 60_000 };
      const brokers = [new RedisBroker(one, 'one', options), new RedisBroker(two, 'two', options)];
      const heard = brokers.map(() => [] as number[]);
      brokers.forEach((broker, i) => broker.onMessage((_, __, offset) => heard[i].push(offset)));
      await Promise.all(brokers.map((broker) => broker.subscribe('r:busy')));
      const given = await Promise.all(
        Array.from({ length: 200 }, (_, i) => brokers[i % 2].publishToStream('r:busy', `m${i}`)),
      );
      const all = Array.from({ length: 200 }, (_, i) => i + 1);
      expect(given.map((p) => p.offset).sort((a, b) => a - b)).toEqual(all);
      await waitUntil(() => heard.every((h) => h.length === 200), 'both to hear all 200');
      expect(heard).toEqual([all, all]); // every instance, the publisher too, in offset order
      const history = await brokers[1].history('r:busy', { after: 0, limit: 1000 });
      expect(history.publications.map((p) => p.offset)).toEqual(all);
    } finally {
      await Promise.all([one, two].map((redis) => redis.onApplicationShutdown()));
    }
  });
});

describe.each(REDIS_MODES)('RedisBroker, a subscription on its way (%s)', (mode) => {
  it('does not wait for the echo of a publication sent before the subscription took effect', async () => {
    const redis = await connect(mode);
    try {
      const broker = new RedisBroker(redis, 'one', CONTRACT_STREAMS);
      const heard: string[] = [];
      broker.onMessage((_, message) => heard.push(message));
      // The SUBSCRIBE leaves late, as when the subscriber connection is busy: a publication made
      // meanwhile is published before it, and its echo never comes.
      const command = mode === 'cluster' ? 'ssubscribe' : 'subscribe';
      const subscriber = redis.subscriber as unknown as Record<
        string,
        (...names: string[]) => Promise<unknown>
      >;
      const original = subscriber[command].bind(subscriber);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const spy = jest.spyOn(subscriber, command).mockImplementation(async (...names) => {
        await held;
        return original(...names);
      });
      const lost = jest.spyOn(redis, 'subscriptionLost');
      const subscribed = broker.subscribe('u:racer');
      const started = Date.now();
      const first = await broker.publishToStream('u:racer', 'm1');
      const tookMs = Date.now() - started;
      release();
      await subscribed;
      spy.mockRestore();
      // Before, it waited for the echo timeout and reported the shard's subscription lost.
      expect(tookMs).toBeLessThan(redis.probe.timeoutMs / 2);
      expect(lost).not.toHaveBeenCalled();
      expect(first?.offset).toBe(1);
      // Subscribed, the next one is heard back, and both are in the stream.
      await broker.publishToStream('u:racer', 'm2');
      expect(heard).toContain('m2');
      expect(
        (await broker.history('u:racer', { after: 0, limit: 10 })).publications.map(
          (p) => p.message,
        ),
      ).toEqual(['m1', 'm2']);
    } finally {
      await redis.onApplicationShutdown();
    }
  });
});

describe('RedisBroker streams after data loss', () => {
  it('starts a new epoch from offset 1 when Redis lost the stream', async () => {
    const redis = await connect('single');
    try {
      const broker = new RedisBroker(redis, 'one', CONTRACT_STREAMS);
      const before = await broker.publishToStream('u:ann', 'm1');
      await broker.publishToStream('u:ann', 'm2');
      const keys = await redis.command.keys(`${redis.prefix}stream:*`);
      expect(keys.sort()).toEqual([
        `${redis.prefix}stream:{u:ann}:log`,
        `${redis.prefix}stream:{u:ann}:meta`,
      ]);
      await redis.command.del(...keys); // what a restart without persistence does
      const after = await broker.publishToStream('u:ann', 'm3');
      expect(after.offset).toBe(1);
      expect(after.epoch).not.toBe(before.epoch);
      expect((await broker.history('u:ann', { after: 0, limit: 10 })).publications).toEqual([
        { offset: 1, message: 'm3' },
      ]);
    } finally {
      await redis.onApplicationShutdown();
    }
  });
});

describe('InstanceLease', () => {
  const leases: InstanceLease[] = [];
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((lease) => lease.beforeApplicationShutdown()));
  });
  function lease(redis: RedisConnections, id: string, heartbeatMs: number): InstanceLease {
    const made = new InstanceLease(redis, id, heartbeatMs);
    leases.push(made);
    return made;
  }

  it('claims an instance whose lease expired exactly once, and runs the purge for it', async () => {
    const redis = await connectRedis(redisUrl());
    try {
      const dying = lease(redis, 'dying', 100);
      await dying.renew();
      await dying.beforeApplicationShutdown(); // as if killed: no more renewals, no release
      const purgedBy: string[] = [];
      const survivors = ['s1', 's2', 's3'].map((id) => {
        const survivor = lease(redis, id, 100);
        survivor.onPurge((dead) => {
          purgedBy.push(`${id}:${dead}`);
          return Promise.resolve();
        });
        return survivor;
      });
      await waitUntil(() => purgedBy.length > 0, 'the dead instance claimed', 2000);
      // Every survivor renews a few more times: nobody claims it again.
      for (let round = 0; round < 3; round++) {
        await Promise.all(survivors.map((survivor) => survivor.renew()));
      }
      expect(purgedBy).toHaveLength(1);
      expect(purgedBy[0]).toMatch(/^s\d:dying$/);
    } finally {
      await redis.onApplicationShutdown();
    }
  });

  it('is synced after its first renewal, unsynced from a loss until the write-back is done', async () => {
    const redis = await connectRedis(redisUrl());
    try {
      const held = lease(redis, 'writer', 60_000);
      const writeBacks: boolean[] = [];
      let release: () => void = () => undefined;
      held.onResync(({ announce }) => {
        writeBacks.push(announce);
        return new Promise((resolve) => (release = resolve));
      });
      const first = held.renew();
      await waitUntil(() => writeBacks.length === 1, 'the first write-back');
      expect(held.synced).toBe(false);
      release();
      await first;
      expect(held.synced).toBe(true);

      await redis.command.flushdb(); // Redis "lost" everything
      const second = held.renew();
      await waitUntil(() => writeBacks.length === 2, 'the write-back after the loss');
      expect(held.synced).toBe(false);
      release();
      await second;
      expect(held.synced).toBe(true);
      expect(writeBacks).toEqual([false, false]); // nobody purged it: nothing to announce again
    } finally {
      await redis.onApplicationShutdown();
    }
  });
});
