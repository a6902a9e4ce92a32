import type { UserInfo } from '@switchboard/protocol';
import type { Result } from 'ioredis';
import { INDEX_COUNT, InstanceLease } from '../../redis/instance-lease';
import type { RedisConnections } from '../../redis/redis.connections';
import type { PresenceMember, PresenceStore, PurgedMember } from './presence-store.interface';

/*
 * One hash per room: field = user id, value = {"n": name, "c": [[instanceId, connectionId], …]}.
 * Every script touches its room's hash alone (KEYS[1]), so that it runs on Redis Cluster too.
 */

/** ARGV: userId, name, instanceId, connectionId, ttl. Answers { user is new, connection is new }. */
const JOIN = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local conns = {}
local known = 0
if raw then
  for _, conn in ipairs(cjson.decode(raw).c) do
    if conn[2] == ARGV[4] then
      known = 1
    else
      conns[#conns + 1] = conn
    end
  end
end
local fresh = (#conns == 0 and known == 0) and 1 or 0
conns[#conns + 1] = { ARGV[3], ARGV[4] }
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ n = ARGV[2], c = conns }))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return { fresh, 1 - known }
`;

/** ARGV: userId, connectionId. Answers { connection was there, user is gone, users left }. */
const LEAVE = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return { 0, 0, redis.call('HLEN', KEYS[1]) }
end
local entry = cjson.decode(raw)
local kept = {}
local found = 0
for _, conn in ipairs(entry.c) do
  if conn[2] == ARGV[2] then
    found = 1
  else
    kept[#kept + 1] = conn
  end
end
if found == 0 then
  return { 0, 0, redis.call('HLEN', KEYS[1]) }
end
if #kept == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return { 1, 1, redis.call('HLEN', KEYS[1]) }
end
entry.c = kept
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return { 1, 0, redis.call('HLEN', KEYS[1]) }
`;

/** ARGV: limit. Answers { count, [userId, name, …] } with at most `limit` users. */
const MEMBERS = `
local limit = tonumber(ARGV[1])
local out = {}
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', math.max(limit, 10))
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    if #out < 2 * limit then
      out[#out + 1] = fields[i]
      out[#out + 1] = cjson.decode(fields[i + 1]).n
    end
  end
until cursor == '0' or #out >= 2 * limit
return { redis.call('HLEN', KEYS[1]), out }
`;

/**
 * ARGV: instanceId. Drops its connections; answers { users left, [userId, name, …] of the users
 * now gone }.
 */
const PURGE = `
local gone = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local entry = cjson.decode(all[i + 1])
  local kept = {}
  for _, conn in ipairs(entry.c) do
    if conn[1] ~= ARGV[1] then
      kept[#kept + 1] = conn
    end
  end
  if #kept == 0 then
    redis.call('HDEL', KEYS[1], all[i])
    gone[#gone + 1] = all[i]
    gone[#gone + 1] = entry.n
  elseif #kept < #entry.c then
    entry.c = kept
    redis.call('HSET', KEYS[1], all[i], cjson.encode(entry))
  end
end
return { redis.call('HLEN', KEYS[1]), gone }
`;

/** A room's presence hash outlives its last change by this long at most. */
const ROOM_TTL_MS = 48 * 3600_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardPresenceJoin(
      key: string,
      ...args: (string | number)[]
    ): Result<[number, number], Context>;
    switchboardPresenceLeave(
      key: string,
      userId: string,
      connectionId: string,
    ): Result<[number, number, number], Context>;
    switchboardPresenceMembers(key: string, limit: number): Result<[number, string[]], Context>;
    switchboardPresencePurge(key: string, instanceId: string): Result<[number, string[]], Context>;
    switchboardCount(key: string, field: string, delta: number): Result<number, Context>;
  }
}

/**
 * Cluster-wide presence in Redis. Each instance keeps an index of the rooms where it has
 * connections (`instance:<id>:rooms`), so that when it dies the instance that purges it finds
 * its entries without scanning every room.
 */
export class RedisPresenceStore implements PresenceStore {
  constructor(private readonly redis: RedisConnections) {
    const define = (name: string, lua: string): void =>
      redis.command.defineCommand(name, { numberOfKeys: 1, lua });
    define('switchboardPresenceJoin', JOIN);
    define('switchboardPresenceLeave', LEAVE);
    define('switchboardPresenceMembers', MEMBERS);
    define('switchboardPresencePurge', PURGE);
    define('switchboardCount', INDEX_COUNT);
  }

  async join(room: string, member: PresenceMember): Promise<boolean> {
    const [fresh, added] = await this.redis.run('presence', (r) =>
      r.switchboardPresenceJoin(
        this.key(room),
        member.userId,
        member.name,
        member.instanceId,
        member.connectionId,
        ROOM_TTL_MS,
      ),
    );
    if (added === 1) {
      await this.count(member.instanceId, room, 1);
    }
    return fresh === 1;
  }

  async leave(room: string, member: PresenceMember): Promise<{ gone: boolean; count: number }> {
    const [found, gone, count] = await this.redis.run('presence', (r) =>
      r.switchboardPresenceLeave(this.key(room), member.userId, member.connectionId),
    );
    if (found === 1) {
      await this.count(member.instanceId, room, -1);
    }
    return { gone: gone === 1, count };
  }

  async members(room: string, limit: number): Promise<{ members: UserInfo[]; count: number }> {
    const [count, flat] = await this.redis.run('presence', (r) =>
      r.switchboardPresenceMembers(this.key(room), limit),
    );
    const members: UserInfo[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      members.push({ id: flat[i], name: flat[i + 1] });
    }
    return { members, count };
  }

  async purgeInstance(instanceId: string): Promise<PurgedMember[]> {
    const index = InstanceLease.indexKey(this.redis, instanceId, 'rooms');
    const rooms = await this.redis.run('presence', (r) => r.hkeys(index));
    const purged: PurgedMember[] = [];
    for (const room of rooms) {
      const [count, flat] = await this.redis.run('presence', (r) =>
        r.switchboardPresencePurge(this.key(room), instanceId),
      );
      for (let i = 0; i < flat.length; i += 2) {
        purged.push({ room, user: { id: flat[i], name: flat[i + 1] }, count });
      }
    }
    await this.redis.run('presence', (r) => r.del(index));
    return purged;
  }

  private async count(instanceId: string, room: string, delta: number): Promise<void> {
    const index = InstanceLease.indexKey(this.redis, instanceId, 'rooms');
    await this.redis.run('presence', (r) => r.switchboardCount(index, room, delta));
  }

  private key(room: string): string {
    return this.redis.key('presence', room);
  }
}
