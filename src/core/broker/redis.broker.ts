import { Logger } from '@nestjs/common';
import type { Result } from 'ioredis';
import type { RedisConnections } from '../../redis/redis.connections';
import {
  BroadcastUnavailableError,
  type Broker,
  type BrokerHandler,
  type HistoryQuery,
  type Publication,
  type StreamHistory,
  type StreamOptions,
  type StreamPosition,
} from './broker.interface';
import { newEpoch } from './memory.broker';

/**
 * Publishes into a stream: KEYS[1] its meta hash (`e` epoch, `o` offset), KEYS[2] its log (a Redis
 * Stream whose entry ids are `<offset>-0`). A stream without meta starts a new epoch with an empty
 * log. The publish is in the same script, so every subscriber hears a stream's publications in
 * offset order. ARGV: pub/sub channel, message, size, ttl ms, meta ttl ms, a fresh epoch, the
 * publisher's tag (see `RedisBroker.publishToStream`), and `PUBLISH` or `SPUBLISH` (Redis Cluster:
 * the channel then shares the keys' slot, so the script publishes on the shard it runs on).
 */
const PUBLISH = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call(ARGV[8], ARGV[1], '|' .. offset .. '|' .. epoch .. '|' .. ARGV[7] .. '|' .. ARGV[2])
return {epoch, offset}
`;

/**
 * Reads a stream's position and kept publications together. ARGV: a fresh epoch (used when the
 * stream has none), meta ttl ms, mode (`after`, `before` or `last`), the bound offset, the limit.
 */
const HISTORY = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
local limit = tonumber(ARGV[5])
local entries = {}
if limit > 0 then
  if ARGV[3] == 'after' then
    entries = redis.call('XRANGE', KEYS[2], (tonumber(ARGV[4]) + 1) .. '-0', '+', 'COUNT', limit)
  elseif ARGV[3] == 'before' then
    entries = redis.call('XREVRANGE', KEYS[2], '(' .. ARGV[4] .. '-0', '-', 'COUNT', limit)
  else
    entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
  end
end
return {epoch, offset, entries}
`;

type StreamEntry = [id: string, fields: [name: string, message: string]];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchboardStreamPublish(
      meta: string,
      log: string,
      ...args: (string | number)[]
    ): Result<[string, number], Context>;
    switchboardStreamHistory(
      meta: string,
      log: string,
      ...args: (string | number)[]
    ): Result<[string, number, StreamEntry[]], Context>;
  }
}

/**
 * Redis pub/sub, and streams in Redis. An ephemeral message travels as
 * `<publishing instance id>|<message>`: this instance delivers its own ephemeral publications
 * locally as it publishes them, and skips their echo from Redis. A stream publication travels as
 * `|<offset>|<epoch>|<tag>|<message>` and every instance delivers it from Redis, this one too, so that the
 * local sockets see a stream in the same order as everyone else. The tag names the publishing
 * instance and call, so that `publishToStream` resolves once its own sockets were served, as
 * `publish` does: a fast publisher waits for the local send loop instead of queueing behind it.
 *
 * A stream's two keys, `stream:{<channel>}:meta` and `stream:{<channel>}:log`, share a hash tag,
 * so the scripts that touch both run on Redis Cluster too. With `REDIS_MODE=cluster`, every
 * channel uses sharded pub/sub under the same hash tag (`{<channel>}`): a publication goes only to
 * the shard that owns the channel's slot and to the instances subscribed there, and a stream's
 * script publishes on the shard that keeps the stream. The shared channels (`all`, `ctl`,
 * `i:<instance>`) are sharded too: classic pub/sub on a cluster copies every message to every
 * node, and a publisher's messages, sent to whichever node, could overtake each other.
 */
export class RedisBroker implements Broker {
  private readonly logger = new Logger(RedisBroker.name);
  private readonly interest = new Set<string>();
  private readonly handlers: BrokerHandler[] = [];
  private readonly origin: string;
  /** `<instance id>#`, in front of the tag number of this instance's stream publications. */
  private readonly tagPrefix: string;
  /** Stream publications of this instance whose echo it waits for, by tag number. */
  private readonly echoes = new Map<number, { channel: string; served: () => void }>();
  private tags = 0;
  /** Redis Cluster: channels on sharded pub/sub. */
  private readonly sharding: boolean;

  constructor(
    private readonly redis: RedisConnections,
    instanceId: string,
    private readonly streams: StreamOptions,
  ) {
    this.origin = `${instanceId}|`;
    this.tagPrefix = `${instanceId}#`;
    this.sharding = redis.mode === 'cluster';
    const prefixLength = redis.prefix.length;
    redis.subscriber.on('message', (channel: string, wire: string) =>
      this.receive(channel.slice(prefixLength), wire),
    );
    // A sharded channel is `<prefix>{<channel>}`.
    redis.subscriber.on('smessage', (channel: string, wire: string) =>
      this.receive(channel.slice(prefixLength + 1, -1), wire),
    );
    redis.onSubscriberReady(() => void this.resubscribe());
    // Echoes in flight when the subscriber connection drops never come: nobody waits for them.
    redis.subscriber.on('close', () => this.echoes.forEach((_, tag) => this.echoed(tag)));
    redis.command.defineCommand('switchboardStreamPublish', { numberOfKeys: 2, lua: PUBLISH });
    redis.command.defineCommand('switchboardStreamHistory', { numberOfKeys: 2, lua: HISTORY });
  }

  get available(): boolean {
    return this.redis.up;
  }

  async publish(channel: string, message: string): Promise<void> {
    this.assertReady();
    // Handed to Redis first (the command is written now), then the local send loop runs while
    // Redis works: serving local sockets first would make every other instance wait for it.
    const sent = this.sharding
      ? this.redis.command.spublish(this.wireName(channel), this.origin + message)
      : this.redis.command.publish(this.wireName(channel), this.origin + message);
    sent.catch(() => undefined); // awaited below; no unhandled rejection while the loop runs
    if (this.interest.has(channel)) {
      this.deliver(channel, message, 0, '');
    }
    try {
      await sent;
    } catch (error) {
      throw new BroadcastUnavailableError({ cause: this.redis.failed(error) });
    }
  }

  async publishToStream(channel: string, message: string): Promise<StreamPosition> {
    this.assertReady();
    const [meta, log] = this.streamKeys(channel);
    // Served here too: resolve once the echo was delivered to this instance's sockets.
    const local = this.interest.has(channel) && this.redis.subscriber.status === 'ready';
    const tag = local ? ++this.tags : 0;
    const served = local
      ? new Promise<void>((resolve) => this.echoes.set(tag, { channel, served: resolve }))
      : undefined;
    let position: StreamPosition;
    try {
      const [epoch, offset] = await this.redis.command.switchboardStreamPublish(
        meta,
        log,
        this.wireName(channel),
        message,
        this.streams.size,
        this.streams.ttlMs,
        this.streams.metaTtlMs,
        newEpoch(),
        local ? `${this.tagPrefix}${tag}` : '',
        this.sharding ? 'SPUBLISH' : 'PUBLISH',
      );
      position = { epoch, offset };
    } catch (error) {
      this.echoed(tag);
      throw new BroadcastUnavailableError({ cause: this.redis.failed(error) });
    }
    await served;
    return position;
  }

  async history(channel: string, query: HistoryQuery): Promise<StreamHistory> {
    const [meta, log] = this.streamKeys(channel);
    const [mode, bound] =
      query.after !== undefined
        ? ['after', query.after]
        : query.before !== undefined
          ? ['before', query.before]
          : ['last', 0];
    const [epoch, offset, entries] = await this.redis.run('history', (r) =>
      r.switchboardStreamHistory(
        meta,
        log,
        newEpoch(),
        this.streams.metaTtlMs,
        mode,
        bound,
        query.limit,
      ),
    );
    const publications: Publication[] = entries.map(([id, fields]) => ({
      offset: Number(id.slice(0, id.indexOf('-'))),
      message: fields[1],
    }));
    if (mode !== 'after') {
      publications.reverse(); // read newest first; answered oldest first
    }
    return { position: { epoch, offset: Number(offset) }, publications };
  }

  async subscribe(channel: string): Promise<void> {
    this.interest.add(channel);
    await this.apply(() =>
      this.sharding
        ? this.redis.subscriber.ssubscribe(this.wireName(channel))
        : this.redis.subscriber.subscribe(this.wireName(channel)),
    );
  }

  async unsubscribe(channel: string): Promise<void> {
    this.interest.delete(channel);
    // Unsubscribed, the echoes of this channel may no longer come.
    for (const [tag, echo] of this.echoes) {
      if (echo.channel === channel) {
        this.echoed(tag);
      }
    }
    await this.apply(() =>
      this.sharding
        ? this.redis.subscriber.sunsubscribe(this.wireName(channel))
        : this.redis.subscriber.unsubscribe(this.wireName(channel)),
    );
  }

  onMessage(handler: BrokerHandler): void {
    this.handlers.push(handler);
  }

  /** How many channels this instance is subscribed to (its interest). */
  get subscriptions(): number {
    return this.interest.size;
  }

  /** Handles what the subscriber heard: a stream publication, or another instance's message. */
  private receive(channel: string, wire: string): void {
    if (wire.charCodeAt(0) === 124 /* | */) {
      const offsetEnd = wire.indexOf('|', 1);
      const epochEnd = wire.indexOf('|', offsetEnd + 1);
      const tagEnd = wire.indexOf('|', epochEnd + 1);
      const offset = Number(wire.slice(1, offsetEnd));
      this.deliver(channel, wire.slice(tagEnd + 1), offset, wire.slice(offsetEnd + 1, epochEnd));
      if (tagEnd > epochEnd + 1 && wire.startsWith(this.tagPrefix, epochEnd + 1)) {
        this.echoed(Number(wire.slice(epochEnd + 1 + this.tagPrefix.length, tagEnd)));
      }
    } else if (!wire.startsWith(this.origin)) {
      this.deliver(channel, wire.slice(wire.indexOf('|') + 1), 0, '');
    }
  }

  /** The Redis name of a channel: `<prefix><channel>`, or `<prefix>{<channel>}` when sharded. */
  private wireName(channel: string): string {
    return this.sharding ? `${this.redis.prefix}{${channel}}` : `${this.redis.prefix}${channel}`;
  }

  private echoed(tag: number): void {
    this.echoes.get(tag)?.served();
    this.echoes.delete(tag);
  }

  private assertReady(): void {
    if (this.redis.command.status !== 'ready') {
      throw new BroadcastUnavailableError();
    }
  }

  private streamKeys(channel: string): [meta: string, log: string] {
    const tagged = `${this.redis.prefix}stream:{${channel}}`;
    return [`${tagged}:meta`, `${tagged}:log`];
  }

  private deliver(channel: string, message: string, offset: number, epoch: string): void {
    for (const handler of this.handlers) {
      handler(channel, message, offset, epoch);
    }
  }

  /** While the subscriber is down the change is only recorded; `resubscribe` applies it later. */
  private async apply(command: () => Promise<unknown>): Promise<void> {
    if (this.redis.subscriber.status !== 'ready') {
      return;
    }
    try {
      await command();
    } catch (error) {
      this.redis.failed(error);
      this.logger.warn({
        msg: 'subscription change deferred until Redis returns',
        error: (error as Error).message,
      });
    }
  }

  private async resubscribe(): Promise<void> {
    if (this.interest.size === 0) {
      return;
    }
    const names = [...this.interest].map((channel) => this.wireName(channel));
    try {
      await (this.sharding
        ? // One call per channel: a sharded subscription takes channels of one slot only.
          Promise.all(names.map((name) => this.redis.subscriber.ssubscribe(name)))
        : this.redis.subscriber.subscribe(...names));
      this.logger.log({ msg: 'resubscribed', channels: this.interest.size });
    } catch (error) {
      this.logger.warn({
        msg: 'resubscribe failed; the next reconnect retries',
        error: (error as Error).message,
      });
    }
  }
}
