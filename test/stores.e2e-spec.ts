import { MemoryRevocationStore } from '../src/auth/memory-revocation.store';
import { RedisRevocationStore } from '../src/auth/redis-revocation.store';
import { MemoryRateLimiter } from '../src/rate-limit/memory-rate-limiter';
import { RedisRateLimiter } from '../src/rate-limit/redis-rate-limiter';
import { InstanceLease } from '../src/redis/instance-lease';
import { MemoryConnectionRegistry } from '../src/realtime/memory-connection-registry';
import { MemoryPresenceStore } from '../src/realtime/presence/memory-presence.store';
import { RedisPresenceStore } from '../src/realtime/presence/redis-presence.store';
import { RedisConnectionRegistry } from '../src/realtime/redis-connection-registry';
import { MemoryTicketStore } from '../src/tickets/memory-ticket.store';
import { RedisTicketStore } from '../src/tickets/redis-ticket.store';
import { describeConnectionRegistry } from './contracts/connection-registry.contract';
import { describePresenceStore } from './contracts/presence-store.contract';
import { describeRateLimiter } from './contracts/rate-limiter.contract';
import { describeRevocationStore } from './contracts/revocation-store.contract';
import { describeTicketStore } from './contracts/ticket-store.contract';
import { suiteRedis } from './support/redis';
import { connectRedis } from './support/redis-connections';

/** One contract suite per store, run against the in-memory and the Redis implementation. */
let redisUrl: string;
let stopRedis: () => Promise<void>;
beforeAll(async () => {
  ({ url: redisUrl, stop: stopRedis } = await suiteRedis());
});
afterAll(() => stopRedis());

describeTicketStore('memory', () => {
  const store = new MemoryTicketStore();
  return { store, close: () => store.onApplicationShutdown() };
});
describeTicketStore('redis', async () => {
  const redis = await connectRedis(redisUrl);
  return { store: new RedisTicketStore(redis), close: () => redis.onApplicationShutdown() };
});

describeRateLimiter('memory', () => {
  const limiter = new MemoryRateLimiter();
  return { limiter, close: () => limiter.onApplicationShutdown() };
});
describeRateLimiter('redis', async () => {
  const redis = await connectRedis(redisUrl);
  return { limiter: new RedisRateLimiter(redis), close: () => redis.onApplicationShutdown() };
});

describeRevocationStore('memory', () => {
  const store = new MemoryRevocationStore();
  return { store, close: () => store.onApplicationShutdown() };
});
describeRevocationStore('redis', async () => {
  const redis = await connectRedis(redisUrl);
  return { store: new RedisRevocationStore(redis), close: () => redis.onApplicationShutdown() };
});

describeConnectionRegistry('memory', () => ({
  registry: new MemoryConnectionRegistry(),
  close: () => undefined,
}));
describeConnectionRegistry('redis', async () => {
  const redis = await connectRedis(redisUrl);
  // The contract's entries come from instances i1 (the caller) and i2, both alive.
  await redis.command.set(InstanceLease.key(redis, 'i2'), '1', 'PX', 60_000);
  return {
    registry: new RedisConnectionRegistry(redis, 'i1'),
    close: () => redis.onApplicationShutdown(),
  };
});

describePresenceStore('memory', () => ({
  store: new MemoryPresenceStore(),
  close: () => undefined,
}));
describePresenceStore('redis', async () => {
  const redis = await connectRedis(redisUrl);
  // Entries come from instances i1 (the caller) and i2, both alive.
  await redis.command.set(InstanceLease.key(redis, 'i2'), '1', 'PX', 60_000);
  return { store: new RedisPresenceStore(redis, 'i1'), close: () => redis.onApplicationShutdown() };
});

describe('RedisConnectionRegistry leases', () => {
  it("forgets a dead instance's entries once its lease expires", async () => {
    const redis = await connectRedis(redisUrl);
    const lease = new InstanceLease(redis, 'dying', 100);
    try {
      await lease.renew();
      const registry = new RedisConnectionRegistry(redis, 'survivor');
      const entry = {
        connectionId: 'c1',
        userId: 'u',
        sessionId: 's|with|bars',
        instanceId: 'dying',
        connectedAt: 1,
      };
      await registry.add(entry);
      expect(await registry.ofUser('u')).toEqual([entry]);
      await lease.beforeApplicationShutdown(); // as if killed: renewals stop (and the key goes)
      expect(await registry.ofUser('u')).toEqual([]);

      const renewed = new InstanceLease(redis, 'sleepy', 100);
      await renewed.renew();
      await registry.add({ ...entry, connectionId: 'c2', instanceId: 'sleepy' });
      clearIntervalOf(renewed);
      await new Promise((resolve) => setTimeout(resolve, 300)); // 2 × heartbeat without renewal
      expect(await registry.ofUser('u')).toEqual([]);
      await renewed.beforeApplicationShutdown();
    } finally {
      await lease.beforeApplicationShutdown();
      await redis.onApplicationShutdown();
    }
  });
});

function clearIntervalOf(lease: InstanceLease): void {
  clearInterval((lease as unknown as { timer: NodeJS.Timeout }).timer);
}
