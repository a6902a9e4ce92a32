import type { Result } from 'ioredis';
import { InstanceLease } from '../redis/instance-lease';
import type { RedisConnections } from '../redis/redis.connections';
import type { ConnectionEntry, ConnectionRegistry } from './connection-registry.interface';

/**
 * Adds a member (when ARGV[1] is not empty), then answers the user's live members oldest first.
 * Members of instances without a live lease are removed on the way, so a dead instance's sockets
 * stop counting within the lease's lifetime. The calling instance is alive by definition.
 */
const ADD_AND_LIST = `
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local live = {}
for i = 1, #all, 2 do
  local member = all[i]
  local instance = string.match(member, '^([^|]+)|')
  if instance == ARGV[5] or redis.call('EXISTS', ARGV[4] .. instance) == 1 then
    live[#live + 1] = member
    live[#live + 1] = all[i + 1]
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return live
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
      leasePrefix: string,
      self: string,
    ): Result<string[], Context>;
  }
}

/**
 * Connections per user in Redis: one sorted set per user, scored by connect time, each member
 * `instanceId|connectionId|sessionId`, valid while its instance's lease lives.
 */
export class RedisConnectionRegistry implements ConnectionRegistry {
  constructor(
    private readonly redis: RedisConnections,
    private readonly instanceId: string,
  ) {
    redis.command.defineCommand('switchboardConnections', { numberOfKeys: 1, lua: ADD_AND_LIST });
  }

  add(entry: ConnectionEntry): Promise<ConnectionEntry[]> {
    return this.list(entry.userId, member(entry), entry.connectedAt);
  }

  async remove(entry: ConnectionEntry): Promise<void> {
    await this.redis.run('connection registry', (r) =>
      r.zrem(this.key(entry.userId), member(entry)),
    );
  }

  ofUser(userId: string): Promise<ConnectionEntry[]> {
    return this.list(userId, '', 0);
  }

  private async list(userId: string, add: string, score: number): Promise<ConnectionEntry[]> {
    const flat = await this.redis.run('connection registry', (r) =>
      r.switchboardConnections(
        this.key(userId),
        add,
        score,
        USER_SET_TTL_MS,
        InstanceLease.key(this.redis, ''),
        this.instanceId,
      ),
    );
    const entries: ConnectionEntry[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      // instanceId and connectionId are UUIDs; the session id (from the token) may hold anything.
      const value = flat[i];
      const first = value.indexOf('|');
      const second = value.indexOf('|', first + 1);
      const instanceId = value.slice(0, first);
      const connectionId = value.slice(first + 1, second);
      const sessionId = value.slice(second + 1);
      entries.push({
        instanceId,
        connectionId,
        sessionId,
        userId,
        connectedAt: Number(flat[i + 1]),
      });
    }
    return entries;
  }

  private key(userId: string): string {
    return this.redis.key('conns', userId);
  }
}

function member(entry: ConnectionEntry): string {
  return `${entry.instanceId}|${entry.connectionId}|${entry.sessionId}`;
}
