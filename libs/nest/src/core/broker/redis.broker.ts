import { Logger, type OnApplicationShutdown } from '@nestjs/common';
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
 * offset order. ARGV: pub/sub channel, message, size, ttl ms, meta ttl ms, a fresh epoch,
 * `PUBLISH` or `SPUBLISH` (Redis Cluster: the channel then shares the keys' slot, so the script
 * publishes on the shard it runs on), and, to publish only into a stream that exists, the message
 * as an ephemeral publication (`<instance id>|<message>`) to send instead when it does not (the
 * answer is then an empty epoch and offset 0).
 */
const PUBLISH = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch and ARGV[8] then
  redis.call(ARGV[7], ARGV[1], ARGV[8])
  return {'', 0}
end
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call(ARGV[7], ARGV[1], '|' .. offset .. '|' .. epoch .. '|' .. ARGV[2])
return {epoch, offset}
`;

/**
 * Reads a stream's position and kept publications together. ARGV: a fresh epoch (used when the
 * stream has none), meta ttl ms, mode (`after`, `before` or `last`), the bound offset, the limit.
 * The bound is used as text, never as a Lua number: Lua prints numbers from 1e14 on as `1e+14`,
 * which is no stream id.
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
    entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[4] .. '-0', '+', 'COUNT', limit)
  elseif ARGV[3] == 'before' then
    entries = redis.call('XREVRANGE', KEYS[2], '(' .. ARGV[4] .. '-0', '-', 'COUNT', limit)
  else
    entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
  end
end
return {epoch, offset, entries}
`;

type StreamEntry = [id: string, fields: [name: string, message: string]];

/**
 * How often the read that fills a gap is tried before the gap is given up (each try is bounded by
 * the command timeout), and the pause between tries.
 */
const FILL_ATTEMPTS = 4;
const FILL_RETRY_MS = 500;

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
 * Where this instance stands in a stream of interest: the last publication it handed to the
 * handlers. A publication that skips offsets is held while the missed ones are read from history.
 */
interface Cursor {
  epoch: string;
  offset: number;
  /** While history is read to fill a gap: what pub/sub brought meanwhile, in order. */
  held: Arrival[] | null;
  /** A gap may have opened while history was read (a shard resubscribed): read again. */
  again: boolean;
  /**
   * The offsets last delivered from history, and when: their pub/sub copies may still come (a
   * shard's old link drains while the new one delivers), and are dropped then.
   */
  fromHistory: { first: number; last: number; at: number } | null;
}

interface Arrival {
  epoch: string;
  offset: number;
  message: string;
}

/** A stream publication of this instance that waits until its own sockets were served. */
interface Echo {
  epoch: string;
  offset: number;
  served: () => void;
  timer: NodeJS.Timeout;
  /** Its echo timeout passed: the end of the next read of the stream releases it. */
  late: boolean;
}

/**
 * Redis pub/sub, and streams in Redis. An ephemeral message travels as
 * `<publishing instance id>|<message>`: this instance delivers its own ephemeral publications
 * locally as it publishes them, and skips their echo from Redis. A stream publication travels as
 * `|<offset>|<epoch>|<message>` and every instance delivers it from Redis, this one too, so that
 * the local sockets see a stream in the same order as everyone else; `publishToStream` resolves
 * once its own sockets were served, as `publish` does: a fast publisher waits for the local send
 * loop instead of queueing behind it. (Not while the channel's subscription is still on its way:
 * the publication may reach Redis first and never come back; the socket whose entering asked for
 * the subscription starts from the stream's position after it.)
 *
 * A stream's publications reach the handlers once each, in offset order, with no gap: a
 * publication that skips offsets is held while the missed ones are read from history, and the
 * streams of interest are read again after every resubscription (the subscriber reconnected, or a
 * Redis Cluster shard's subscriptions moved to a new master after a failover or a slot
 * migration). A publication's wait for its echo is bounded by the probe timeout: past it, the
 * shard's subscription is reported lost (`RedisConnections.subscriptionLost`) and the stream is
 * read from history, so the publisher resolves with its position (the script put the
 * publication in the stream: only its local delivery was late).
 *
 * A stream's two keys, `stream:{<channel>}:meta` and `stream:{<channel>}:log`, share a hash tag,
 * so the scripts that touch both run on Redis Cluster too. With `REDIS_MODE=cluster`, every
 * channel uses sharded pub/sub under the same hash tag (`{<channel>}`): a publication goes only to
 * the shard that owns the channel's slot and to the instances subscribed there, and a stream's
 * script publishes on the shard that keeps the stream. The shared channels (`all`, `ctl`,
 * `i:<instance>`) are sharded too: classic pub/sub on a cluster copies every message to every
 * node, and a publisher's messages, sent to whichever node, could overtake each other.
 */
export class RedisBroker implements Broker, OnApplicationShutdown {
  private readonly logger = new Logger(RedisBroker.name);
  private readonly interest = new Set<string>();
  /**
   * Channels whose subscription is on its way to Redis, with how many are: a publication sent
   * meanwhile may be published before the subscription takes effect, and then no echo comes.
   */
  private readonly subscribing = new Map<string, number>();
  private readonly handlers: BrokerHandler[] = [];
  private readonly resubscribedListeners: Array<() => void> = [];
  private readonly origin: string;
  /** The streams of interest that delivered something or were read, by channel. */
  private readonly cursors = new Map<string, Cursor>();
  /** Stream publications of this instance that wait for their local delivery, by channel. */
  private readonly echoes = new Map<string, Echo[]>();
  /** How long a publication waits for its echo before it is read from history. */
  private readonly echoTimeoutMs: number;
  /** Redis Cluster: channels on sharded pub/sub. */
  private readonly sharding: boolean;
  private closed = false;

  constructor(
    private readonly redis: RedisConnections,
    instanceId: string,
    private readonly streams: StreamOptions,
  ) {
    this.origin = `${instanceId}|`;
    this.sharding = redis.mode === 'cluster';
    this.echoTimeoutMs = redis.probe.timeoutMs;
    const prefixLength = redis.prefix.length;
    redis.subscriber.on('message', (channel: string, wire: string) =>
      this.receive(channel.slice(prefixLength), wire),
    );
    // A sharded channel is `<prefix>{<channel>}`.
    redis.subscriber.on('smessage', (channel: string, wire: string) =>
      this.receive(channel.slice(prefixLength + 1, -1), wire),
    );
    redis.onSubscriberReady(() => void this.resubscribe());
    redis.onShardsResubscribed(() => void this.resubscribe());
    // Echoes in flight when the subscriber connection drops never come: the streams are read
    // again once it is back, and nobody waits for them meanwhile.
    redis.subscriber.on('close', () => [...this.echoes.keys()].forEach((c) => this.settle(c)));
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

  async publishToStream(channel: string, message: string): Promise<StreamPosition>;
  async publishToStream(
    channel: string,
    message: string,
    existingOnly: boolean,
  ): Promise<StreamPosition | null>;
  async publishToStream(
    channel: string,
    message: string,
    existingOnly = false,
  ): Promise<StreamPosition | null> {
    this.assertReady();
    const [meta, log] = this.streamKeys(channel);
    // Only a subscription in effect before the script runs is sure to bring the echo back.
    const heard = this.interest.has(channel) && !this.subscribing.has(channel);
    let position: StreamPosition;
    try {
      // Bounded by the command timeout; a script that failed or timed out may or may not have
      // run: its fate is unknown, and the caller is told that Redis is unavailable.
      const [epoch, offset] = await this.redis.command.switchboardStreamPublish(
        meta,
        log,
        this.wireName(channel),
        message,
        this.streams.size,
        this.streams.ttlMs,
        this.streams.metaTtlMs,
        newEpoch(),
        this.sharding ? 'SPUBLISH' : 'PUBLISH',
        ...(existingOnly ? [this.origin + message] : []),
      );
      position = { epoch, offset };
    } catch (error) {
      throw new BroadcastUnavailableError({ cause: this.redis.failed(error) });
    }
    if (position.offset === 0) {
      // No stream: published as ephemeral, whose echo this instance skips; its sockets get it here.
      if (this.interest.has(channel)) {
        this.deliver(channel, message, 0, '');
      }
      return null;
    }
    if (heard && this.interest.has(channel) && this.redis.subscriber.status === 'ready') {
      await this.served(channel, position);
    }
    return position;
  }

  async history(channel: string, query: HistoryQuery): Promise<StreamHistory> {
    const read = await this.read(channel, query);
    if (this.interest.has(channel) && !this.cursors.has(channel)) {
      // From here on a gap in what pub/sub brings can be noticed, and filled.
      this.cursors.set(channel, { ...read.position, held: null, again: false, fromHistory: null });
    }
    return read;
  }

  async subscribe(channel: string): Promise<void> {
    this.interest.add(channel);
    this.subscribing.set(channel, (this.subscribing.get(channel) ?? 0) + 1);
    try {
      await this.apply(() => this.subscribeWire(channel));
    } finally {
      const left = (this.subscribing.get(channel) ?? 1) - 1;
      if (left === 0) {
        this.subscribing.delete(channel);
      } else {
        this.subscribing.set(channel, left);
      }
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    this.interest.delete(channel);
    this.cursors.delete(channel);
    // Unsubscribed, the echoes of this channel may no longer come.
    this.settle(channel);
    await this.apply(() => this.unsubscribeWire(channel));
  }

  onMessage(handler: BrokerHandler): void {
    this.handlers.push(handler);
  }

  onResubscribed(listener: () => void): void {
    this.resubscribedListeners.push(listener);
  }

  /** How many channels this instance is subscribed to (its interest). */
  get subscriptions(): number {
    return this.interest.size;
  }

  onApplicationShutdown(): void {
    this.closed = true;
    [...this.echoes.keys()].forEach((channel) => this.settle(channel));
  }

  /** Handles what the subscriber heard: a stream publication, or another instance's message. */
  private receive(channel: string, wire: string): void {
    if (wire.charCodeAt(0) === 124 /* | */) {
      const offsetEnd = wire.indexOf('|', 1);
      const epochEnd = wire.indexOf('|', offsetEnd + 1);
      this.arrive(
        channel,
        {
          epoch: wire.slice(offsetEnd + 1, epochEnd),
          offset: Number(wire.slice(1, offsetEnd)),
          message: wire.slice(epochEnd + 1),
        },
        true,
      );
    } else if (!wire.startsWith(this.origin)) {
      this.deliver(channel, wire.slice(wire.indexOf('|') + 1), 0, '');
    }
  }

  /**
   * A stream publication from pub/sub: delivered when it follows the last one, held while a gap
   * before it is filled from history (with `fill`; otherwise delivered anyway), dropped when it
   * was delivered from history already.
   */
  private arrive(channel: string, arrival: Arrival, fill: boolean): void {
    const cursor = this.cursors.get(channel);
    if (cursor === undefined) {
      if (this.interest.has(channel)) {
        this.cursors.set(channel, {
          ...arrival,
          held: null,
          again: false,
          fromHistory: null,
        });
      }
      this.deliver(channel, arrival.message, arrival.offset, arrival.epoch);
      this.settleServed(channel, arrival);
      return;
    }
    if (cursor.held !== null) {
      cursor.held.push(arrival);
      return;
    }
    if (arrival.epoch === cursor.epoch && arrival.offset > cursor.offset + 1 && fill) {
      this.redis.subscriptionLost();
      this.logger.warn({
        msg: 'publications missing from pub/sub; reading them from history',
        channel,
        after: cursor.offset,
        received: arrival.offset,
      });
      cursor.held = [arrival];
      void this.fill(channel, cursor, true);
      return;
    }
    if (arrival.epoch === cursor.epoch && arrival.offset <= cursor.offset) {
      const copy = cursor.fromHistory;
      if (
        copy !== null &&
        arrival.offset >= copy.first &&
        arrival.offset <= copy.last &&
        Date.now() - copy.at < this.echoTimeoutMs
      ) {
        return; // delivered from history already
      }
      // Otherwise the stream went back: a failover lost writes that the old master had published.
    }
    this.advance(channel, cursor, arrival);
  }

  /** Hands a stream publication to the handlers and moves the cursor on to it. */
  private advance(channel: string, cursor: Cursor, arrival: Arrival): void {
    if (arrival.epoch !== cursor.epoch) {
      cursor.fromHistory = null;
    }
    cursor.epoch = arrival.epoch;
    cursor.offset = arrival.offset;
    this.deliver(channel, arrival.message, arrival.offset, arrival.epoch);
    this.settleServed(channel, cursor);
  }

  /**
   * Reads what the stream holds after the cursor and delivers it, then what pub/sub brought
   * meanwhile. A failed read is tried again a few times before the gap is given up. The channel's
   * late echoes are released once a read is done or has failed (the publications are in the
   * stream: only their local delivery is in question).
   *
   * @param lost pub/sub lost a publication of the channel: its subscription is made again first
   *   (Redis ignores a repeated one), so that what the read does not see, pub/sub brings, even
   *   when nothing told ioredis that the subscription was gone.
   */
  private async fill(channel: string, cursor: Cursor, lost = false): Promise<void> {
    let failures = 0;
    if (lost) {
      await this.apply(() => this.subscribeWire(channel));
      if (!this.interest.has(channel)) {
        await this.apply(() => this.unsubscribeWire(channel)); // left meanwhile: undo it
      }
    }
    do {
      cursor.again = false;
      try {
        const { position, publications } = await this.read(channel, {
          after: cursor.offset,
          limit: this.streams.size,
        });
        if (this.cursors.get(channel) !== cursor) {
          break; // unsubscribed meanwhile
        }
        if (position.epoch !== cursor.epoch) {
          break; // the stream started again (its history was lost): pub/sub's copies go out as they are
        }
        if (publications.length > 0 && publications[0].offset > cursor.offset + 1) {
          this.logger.warn({
            msg: 'publications missed by pub/sub are no longer in history',
            channel,
            after: cursor.offset,
            kept: publications[0].offset,
          });
        }
        cursor.offset = Math.min(cursor.offset, position.offset); // a failover lost writes
        for (const { offset, message } of publications) {
          this.advance(channel, cursor, { epoch: position.epoch, offset, message });
        }
        if (publications.length > 0) {
          const now = Date.now();
          const earlier = cursor.fromHistory;
          // Reads in a row deliver adjacent ranges: the copies of all of them may still come.
          const recent = earlier !== null && now - earlier.at < this.echoTimeoutMs;
          cursor.fromHistory = {
            first: recent ? earlier.first : publications[0].offset,
            last: publications[publications.length - 1].offset,
            at: now,
          };
        }
      } catch (error) {
        if (++failures < FILL_ATTEMPTS && !this.closed && this.cursors.get(channel) === cursor) {
          // A slot on the move answers a while with errors; the gap must not be given up for that.
          this.settleServed(channel, cursor, true); // the publications are in the stream
          await new Promise((resolve) => setTimeout(resolve, FILL_RETRY_MS).unref());
          cursor.again = true;
          continue;
        }
        this.logger.warn({
          msg: 'could not read missed publications from history; delivering what pub/sub brought',
          channel,
          after: cursor.offset,
          error: (error as Error).message,
          cause: ((error as Error).cause as Error | undefined)?.message,
        });
        break;
      }
    } while (cursor.again);
    const held = cursor.held ?? [];
    cursor.held = null;
    cursor.again = false;
    if (this.cursors.get(channel) === cursor) {
      held.forEach((arrival) => this.arrive(channel, arrival, false));
      this.settleServed(channel, cursor, true);
    } else {
      this.settle(channel);
    }
  }

  /** Fills the gaps of every stream of interest (after a resubscription), one read each. */
  private catchUp(): void {
    for (const [channel, cursor] of this.cursors) {
      if (cursor.held !== null) {
        cursor.again = true;
      } else {
        cursor.held = [];
        void this.fill(channel, cursor);
      }
    }
  }

  /**
   * Resolves once the publication was delivered to this instance's handlers, or the echo timeout
   * passed and the stream was read from history.
   */
  private served(channel: string, position: StreamPosition): Promise<void> {
    const cursor = this.cursors.get(channel);
    if (
      cursor !== undefined &&
      cursor.epoch === position.epoch &&
      cursor.offset >= position.offset
    ) {
      return Promise.resolve(); // its echo came before the script's answer
    }
    return new Promise((resolve) => {
      const echo: Echo = {
        ...position,
        served: resolve,
        late: false,
        timer: setTimeout(() => this.echoLate(channel, echo), this.echoTimeoutMs),
      };
      const waiting = this.echoes.get(channel);
      if (waiting === undefined) {
        this.echoes.set(channel, [echo]);
      } else {
        waiting.push(echo);
      }
    });
  }

  /** The echo did not come in time: the shard's subscription is lost, or moving. */
  private echoLate(channel: string, echo: Echo): void {
    echo.late = true;
    this.redis.subscriptionLost();
    this.logger.warn({
      msg: 'own publication not heard back from Redis in time; reading it from history',
      channel,
      offset: echo.offset,
      timeoutMs: this.echoTimeoutMs,
    });
    let cursor = this.cursors.get(channel);
    if (cursor === undefined) {
      if (!this.interest.has(channel)) {
        this.settle(channel);
        return;
      }
      cursor = {
        epoch: echo.epoch,
        offset: echo.offset - 1,
        held: null,
        again: false,
        fromHistory: null,
      };
      this.cursors.set(channel, cursor);
    }
    if (cursor.held === null) {
      cursor.held = [];
      void this.fill(channel, cursor, true);
    } else {
      cursor.again = true; // the read under way may have missed this publication
    }
  }

  /**
   * Releases the echoes that the cursor has passed or left behind (a new epoch), and with `late`
   * those whose timeout passed.
   */
  private settleServed(channel: string, cursor: StreamPosition, late = false): void {
    const waiting = this.echoes.get(channel);
    if (waiting === undefined) {
      return;
    }
    const pending = waiting.filter((echo) => {
      if (echo.epoch === cursor.epoch && echo.offset > cursor.offset && !(late && echo.late)) {
        return true;
      }
      clearTimeout(echo.timer);
      echo.served();
      return false;
    });
    if (pending.length === 0) {
      this.echoes.delete(channel);
    } else {
      this.echoes.set(channel, pending);
    }
  }

  /** Releases every echo of the channel. */
  private settle(channel: string): void {
    for (const echo of this.echoes.get(channel) ?? []) {
      clearTimeout(echo.timer);
      echo.served();
    }
    this.echoes.delete(channel);
  }

  private subscribeWire(channel: string): Promise<unknown> {
    return this.sharding
      ? this.redis.subscriber.ssubscribe(this.wireName(channel))
      : this.redis.subscriber.subscribe(this.wireName(channel));
  }

  private unsubscribeWire(channel: string): Promise<unknown> {
    return this.sharding
      ? this.redis.subscriber.sunsubscribe(this.wireName(channel))
      : this.redis.subscriber.unsubscribe(this.wireName(channel));
  }

  /** The Redis name of a channel: `<prefix><channel>`, or `<prefix>{<channel>}` when sharded. */
  private wireName(channel: string): string {
    return this.sharding ? `${this.redis.prefix}{${channel}}` : `${this.redis.prefix}${channel}`;
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

  private async read(channel: string, query: HistoryQuery): Promise<StreamHistory> {
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

  /**
   * Subscribes every channel of interest again, then reads what the streams missed meanwhile:
   * only once the subscriptions took effect does a read miss nothing that pub/sub will not bring.
   */
  private async resubscribe(): Promise<void> {
    if (this.interest.size === 0 || this.redis.subscriber.status !== 'ready') {
      return; // once it is ready, its `ready` event calls again
    }
    const names = [...this.interest].map((channel) => this.wireName(channel));
    try {
      await (this.sharding
        ? // One call per channel: a sharded subscription takes channels of one slot only.
          Promise.all(names.map((name) => this.redis.subscriber.ssubscribe(name)))
        : this.redis.subscriber.subscribe(...names));
      this.logger.log({ msg: 'resubscribed', channels: this.interest.size });
      this.resubscribedListeners.forEach((listener) => listener());
    } catch (error) {
      this.redis.failed(error);
      this.logger.warn({
        msg: 'resubscribe failed; the next reconnect retries',
        error: (error as Error).message,
      });
    }
    this.catchUp();
  }
}
