import type { UserInfo } from '@switchboard/protocol';
import type { Result } from 'ioredis';
import { INDEX_COUNT, InstanceLease } from '../../redis/instance-lease';
import type { RedisConnections } from '../../redis/redis.connections';
import type {
  MembersPage,
  PresenceMember,
  PresenceStore,
  PurgedMember,
} from './presence-store.interface';

/*
 * Per room, two keys in one hash slot (`{room}` is the hash tag), so that every script runs on
 * Redis Cluster too:
 * - KEYS[1], a hash: field = user id, value = {"n": name, "c": [[instanceId, connectionId], …]};
 *   its length is the room's count;
 * - KEYS[2], a sorted set of the same user ids, all with score 0: ZRANGEBYLEX pages through them
 *   in a stable order without reading the whole room.
 */

/**
 * ARGV: userId, name, instanceId, connectionId, ttl. Answers { user is new, connection is new,
 * users now }.
 */
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
if fresh == 1 then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return { fresh, 1 - known, redis.call('HLEN', KEYS[1]) }
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
  redis.call('ZREM', KEYS[2], ARGV[1])
  return { 1, 1, redis.call('HLEN', KEYS[1]) }
end
entry.c = kept
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return { 1, 0, redis.call('HLEN', KEYS[1]) }
`;

/**
 * ARGV: limit, after ('' for the first page). Answers { count, [userId, name, …] of at most
 * `limit` users after `after`, more follow (1) or not (0) }.
 */
const PAGE = `
local limit = tonumber(ARGV[1])
local from = ARGV[2] == '' and '-' or '(' .. ARGV[2]
local ids = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, limit + 1)
local more = #ids > limit and 1 or 0
local out = {}
for i = 1, math.min(#ids, limit) do
  local raw = redis.call('HGET', KEYS[1], ids[i])
  if raw then
    out[#out + 1] = ids[i]
    out[#out + 1] = cjson.decode(raw).n
  end
end
return { redis.call('HLEN', KEYS[1]), out, more }
`;

/** ARGV: user ids. Answers { count, [userId, name, …] of those present }. */
const CHECK = `
local out = {}
for i = 1, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = cjson.decode(raw).n
  end
end
return { redis.call('HLEN', KEYS[1]), out }
`;

/**
 * ARGV: instanceId. Drops its connections; answers [userId, name, …] of the users now gone.
 * Reads the whole room: it runs once per room of a dead instance.
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
    redis.call('ZREM', KEYS[2], all[i])
    gone[#gone + 1] = all[i]
    gone[#gone + 1] = entry.n
  elseif #kept < #entry.c then
    entry.c = kept
    redis.call('HSET', KEYS[1], all[i], cjson.encode(entry))
  end
end
return gone
`;

/** A room's presence hash outlives its last change by this long at most. */
const ROOM_TTL_MS = 48 * 3600_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardPresenceJoin(
      hash: string,
      ids: string,
      ...args: (string | number)[]
    ): Result<[number, number, number], Context>;
    switchboardPresenceLeave(
      hash: string,
      ids: string,
      userId: string,
      connectionId: string,
    ): Result<[number, number, number], Context>;
    switchboardPresencePage(
      hash: string,
      ids: string,
      limit: number,
      after: string,
    ): Result<[number, string[], number], Context>;
    switchboardPresenceCheck(
      hash: string,
      ids: string,
      ...userIds: string[]
    ): Result<[number, string[]], Context>;
    switchboardPresencePurge(
      hash: string,
      ids: string,
      instanceId: string,
    ): Result<string[], Context>;
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
    const define = (name: string, lua: string, numberOfKeys: number): void =>
      redis.command.defineCommand(name, { numberOfKeys, lua });
    define('switchboardPresenceJoin', JOIN, 2);
    define('switchboardPresenceLeave', LEAVE, 2);
    define('switchboardPresencePage', PAGE, 2);
    define('switchboardPresenceCheck', CHECK, 2);
    define('switchboardPresencePurge', PURGE, 2);
    define('switchboardCount', INDEX_COUNT, 1);
  }

  async join(room: string, member: PresenceMember): Promise<{ fresh: boolean; count: number }> {
    const [fresh, added, count] = await this.redis.run('presence', (r) =>
      r.switchboardPresenceJoin(
        ...this.keys(room),
        member.userId,
        member.name,
        member.instanceId,
        member.connectionId,
        ROOM_TTL_MS,
      ),
    );
    if (added === 1) {
      await this.index(member.instanceId, room, 1);
    }
    return { fresh: fresh === 1, count };
  }

  async leave(room: string, member: PresenceMember): Promise<{ gone: boolean; count: number }> {
    const [found, gone, count] = await this.redis.run('presence', (r) =>
      r.switchboardPresenceLeave(...this.keys(room), member.userId, member.connectionId),
    );
    if (found === 1) {
      await this.index(member.instanceId, room, -1);
    }
    return { gone: gone === 1, count };
  }

  async page(room: string, limit: number, after?: string): Promise<MembersPage> {
    const [count, flat, more] = await this.redis.run('presence', (r) =>
      r.switchboardPresencePage(...this.keys(room), limit, after ?? ''),
    );
    const members = users(flat);
    const last = members.at(-1);
    return { members, count, ...(more === 1 && last !== undefined ? { next: last.id } : {}) };
  }

  async check(
    room: string,
    userIds: readonly string[],
  ): Promise<{ present: UserInfo[]; count: number }> {
    const [count, flat] = await this.redis.run('presence', (r) =>
      r.switchboardPresenceCheck(...this.keys(room), ...userIds),
    );
    return { present: users(flat), count };
  }

  async count(room: string): Promise<number> {
    return this.redis.run('presence', (r) => r.hlen(this.keys(room)[0]));
  }

  async purgeInstance(instanceId: string): Promise<PurgedMember[]> {
    const index = InstanceLease.indexKey(this.redis, instanceId, 'rooms');
    const rooms = await this.redis.run('presence', (r) => r.hkeys(index));
    const purged: PurgedMember[] = [];
    for (const room of rooms) {
      const flat = await this.redis.run('presence', (r) =>
        r.switchboardPresencePurge(...this.keys(room), instanceId),
      );
      purged.push(...users(flat).map((user) => ({ room, user })));
    }
    await this.redis.run('presence', (r) => r.del(index));
    return purged;
  }

  private async index(instanceId: string, room: string, delta: number): Promise<void> {
    const index = InstanceLease.indexKey(this.redis, instanceId, 'rooms');
    await this.redis.run('presence', (r) => r.switchboardCount(index, room, delta));
  }

  /** The room's hash and its sorted set of ids, in one hash slot. */
  private keys(room: string): [hash: string, ids: string] {
    const hash = this.redis.key('presence', `{${room}}`);
    return [hash, `${hash}:ids`];
  }
}

/** `[id, name, id, name, …]` as users. */
function users(flat: readonly string[]): UserInfo[] {
  const out: UserInfo[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    out.push({ id: flat[i], name: flat[i + 1] });
  }
  return out;
}
