import type { Result } from 'ioredis';
import { INDEX_COUNT, InstanceLease } from '../../redis/instance-lease';
import type { RedisConnections } from '../../redis/redis.connections';
import type { ConnectionEntry, ConnectionRegistry } from './connection-registry.interface';

/** Adds a member; answers whether it is new, then the user's members oldest first, with scores. */
const ADD_AND_LIST = `
local added = redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return { added, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') }
`;

/** Removes every member of instance ARGV[1] (members start with `<instanceId>|`). */
const PURGE = `
local prefix = ARGV[1] .. '|'
local removed = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, #prefix) == prefix then
    removed = removed + redis.call('ZREM', KEYS[1], member)
  end
end
return removed
`;

/** A user's sorted set is dropped after this long without a new connection. */
const USER_SET_TTL_MS = 48 * 3600_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardConnections(
      key: string,
      member: string,
      score: number,
      ttlMs: number,
    ): Result<[number, string[]], Context>;
    switchboardConnectionsPurge(key: string, instanceId: string): Result<number, Context>;
  }
}

/**
 * Connections per user in Redis: one sorted set per user, scored by connect time, each member
 * `instanceId|connectionId|sessionId`. Each instance keeps an index of its users
 * (`instance:<id>:users`), so that the instance that purges a dead one finds its entries.
 */
export class RedisConnectionRegistry implements ConnectionRegistry {
  constructor(private readonly redis: RedisConnections) {
    redis.command.defineCommand('switchboardConnections', { numberOfKeys: 1, lua: ADD_AND_LIST });
    redis.command.defineCommand('switchboardConnectionsPurge', { numberOfKeys: 1, lua: PURGE });
    redis.command.defineCommand('switchboardCount', { numberOfKeys: 1, lua: INDEX_COUNT });
  }

  async add(entry: ConnectionEntry): Promise<ConnectionEntry[]> {
    const [added, flat] = await this.redis.run('connection registry', (r) =>
      r.switchboardConnections(
        this.key(entry.userId),
        member(entry),
        entry.connectedAt,
        USER_SET_TTL_MS,
      ),
    );
    if (added === 1) {
      await this.count(entry, 1);
    }
    return entries(entry.userId, flat);
  }

  async remove(entry: ConnectionEntry): Promise<void> {
    const removed = await this.redis.run('connection registry', (r) =>
      r.zrem(this.key(entry.userId), member(entry)),
    );
    if (removed === 1) {
      await this.count(entry, -1);
    }
  }

  async ofUser(userId: string): Promise<ConnectionEntry[]> {
    const flat = await this.redis.run('connection registry', (r) =>
      r.zrange(this.key(userId), 0, -1, 'WITHSCORES'),
    );
    return entries(userId, flat);
  }

  async purgeInstance(instanceId: string): Promise<void> {
    const index = InstanceLease.indexKey(this.redis, instanceId, 'users');
    const users = await this.redis.run('connection registry', (r) => r.hkeys(index));
    for (const userId of users) {
      await this.redis.run('connection registry', (r) =>
        r.switchboardConnectionsPurge(this.key(userId), instanceId),
      );
    }
    await this.redis.run('connection registry', (r) => r.del(index));
  }

  private async count(entry: ConnectionEntry, delta: number): Promise<void> {
    const index = InstanceLease.indexKey(this.redis, entry.instanceId, 'users');
    await this.redis.run('connection registry', (r) =>
      r.switchboardCount(index, entry.userId, delta),
    );
  }

  private key(userId: string): string {
    return this.redis.key('conns', userId);
  }
}

function member(entry: ConnectionEntry): string {
  return `${entry.instanceId}|${entry.connectionId}|${entry.sessionId}`;
}

function entries(userId: string, flat: string[]): ConnectionEntry[] {
  const result: ConnectionEntry[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    // instanceId and connectionId are UUIDs; the session id (from the token) may hold anything.
    const value = flat[i];
    const first = value.indexOf('|');
    const second = value.indexOf('|', first + 1);
    result.push({
      instanceId: value.slice(0, first),
      connectionId: value.slice(first + 1, second),
      sessionId: value.slice(second + 1),
      userId,
      connectedAt: Number(flat[i + 1]),
    });
  }
  return result;
}
