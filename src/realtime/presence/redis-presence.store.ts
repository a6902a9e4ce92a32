import type { UserInfo } from '@app/protocol';
import type { Result } from 'ioredis';
import { InstanceLease } from '../../redis/instance-lease';
import type { RedisConnections } from '../../redis/redis.connections';
import type { PresenceMember, PresenceStore } from './presence-store.interface';

/*
 * One hash per room: field = user id, value = {"n": name, "c": [[instanceId, connectionId], …]}.
 * Every script drops connections whose instance has no live lease (the caller's own instance,
 * ARGV[6], is alive by definition). ARGV: userId, name, instanceId, connectionId, lease prefix,
 * self, ttl.
 */
const LIVE = `
local function live(instance)
  return instance == ARGV[6] or redis.call('EXISTS', ARGV[5] .. instance) == 1
end
`;

const JOIN = `${LIVE}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local conns = {}
if raw then
  for _, conn in ipairs(cjson.decode(raw).c) do
    if conn[2] ~= ARGV[4] and live(conn[1]) then
      conns[#conns + 1] = conn
    end
  end
end
local fresh = #conns == 0 and 1 or 0
conns[#conns + 1] = { ARGV[3], ARGV[4] }
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ n = ARGV[2], c = conns }))
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return fresh
`;

const LEAVE = `${LIVE}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return 0
end
local entry = cjson.decode(raw)
local kept = {}
local found = 0
for _, conn in ipairs(entry.c) do
  if conn[2] == ARGV[4] then
    found = 1
  elseif live(conn[1]) then
    kept[#kept + 1] = conn
  end
end
if #kept == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return found
end
entry.c = kept
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 0
`;

const MEMBERS = `
local alive = {}
local function live(instance)
  if alive[instance] == nil then
    alive[instance] = instance == ARGV[2] or redis.call('EXISTS', ARGV[1] .. instance) == 1
  end
  return alive[instance]
end
local limit = tonumber(ARGV[3])
local out = {}
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', math.max(limit, 10))
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    if #out < 2 * limit then
      local entry = cjson.decode(fields[i + 1])
      local present = false
      for _, conn in ipairs(entry.c) do
        if live(conn[1]) then
          present = true
          break
        end
      end
      if present then
        out[#out + 1] = fields[i]
        out[#out + 1] = entry.n
      else
        redis.call('HDEL', KEYS[1], fields[i])
      end
    end
  end
until cursor == '0' or #out >= 2 * limit
return { redis.call('HLEN', KEYS[1]), out }
`;

/** A room's presence hash outlives its last change by this long at most. */
const ROOM_TTL_MS = 48 * 3600_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardPresenceJoin(key: string, ...args: (string | number)[]): Result<number, Context>;
    switchboardPresenceLeave(key: string, ...args: (string | number)[]): Result<number, Context>;
    switchboardPresenceMembers(
      key: string,
      leasePrefix: string,
      self: string,
      limit: number,
    ): Result<[number, string[]], Context>;
  }
}

/** Cluster-wide presence in Redis, made of connections that count while their instance lives. */
export class RedisPresenceStore implements PresenceStore {
  private readonly leasePrefix: string;

  constructor(
    private readonly redis: RedisConnections,
    private readonly instanceId: string,
  ) {
    redis.command.defineCommand('switchboardPresenceJoin', { numberOfKeys: 1, lua: JOIN });
    redis.command.defineCommand('switchboardPresenceLeave', { numberOfKeys: 1, lua: LEAVE });
    redis.command.defineCommand('switchboardPresenceMembers', { numberOfKeys: 1, lua: MEMBERS });
    this.leasePrefix = InstanceLease.key(redis, '');
  }

  async join(room: string, member: PresenceMember): Promise<boolean> {
    const fresh = await this.redis.run('presence', (r) =>
      r.switchboardPresenceJoin(this.key(room), ...this.args(member)),
    );
    return fresh === 1;
  }

  async leave(room: string, member: PresenceMember): Promise<boolean> {
    const gone = await this.redis.run('presence', (r) =>
      r.switchboardPresenceLeave(this.key(room), ...this.args(member)),
    );
    return gone === 1;
  }

  async members(room: string, limit: number): Promise<{ members: UserInfo[]; count: number }> {
    const [count, flat] = await this.redis.run('presence', (r) =>
      r.switchboardPresenceMembers(this.key(room), this.leasePrefix, this.instanceId, limit),
    );
    const members: UserInfo[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      members.push({ id: flat[i], name: flat[i + 1] });
    }
    return { members, count };
  }

  private args(member: PresenceMember): (string | number)[] {
    return [
      member.userId,
      member.name,
      member.instanceId,
      member.connectionId,
      this.leasePrefix,
      this.instanceId,
      ROOM_TTL_MS,
    ];
  }

  private key(room: string): string {
    return this.redis.key('presence', room);
  }
}
