import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { inBatches } from '../common/batches';
import { AppConfig } from '../config/app-config';
import { Instance } from '../config/instance';
import { MetricsService } from '../metrics/metrics.service';
import type { Connection } from './connection';
import { Hub } from './hub';
import { BroadcastUnavailableError, Broker } from './broker/broker.interface';

/** Channels every instance listens to. */
const ALL = 'all';
const CONTROL = 'ctl';

const USER_CHANNEL_PREFIX = 'u:';
export const userChannel = (userId: string): string => `${USER_CHANNEL_PREFIX}${userId}`;
/** Stream publications of one call in flight at once (`toUsers` names up to 1,000 users). */
const STREAM_PUBLISH_CONCURRENCY = 100;
export const roomChannel = (room: string): string => `r:${room}`;
export const ALL_CHANNEL = ALL;

/**
 * What travels between instances. `e`: an event frame; `c`: close sockets; `n`: a notice; `b`: a
 * room's batch of presence changes and typing (its topic: the instance that sent it); `f`: client
 * frames for a connection of one instance that reached another (Server-Sent Events' POSTs).
 */
type Kind = 'e' | 'c' | 'n' | 'b' | 'f';

interface CloseCommand {
  code: number;
  reason: string;
  sessionId?: string;
  connectionId?: string;
}

/**
 * The node: this instance's hub (its sockets) joined to the broker (every instance). Events,
 * disconnects and notices go out through the broker and come back through its handler, in both
 * modes alike, and the handler serves the local sockets. A message is one header line and the
 * payload: `<kind>|<published at ms>|<except connection id, or a notice's topic>\n<payload>`,
 * so an event frame is serialized once by its publisher and sent on as-is by every instance that
 * receives it.
 *
 * Interest-based routing: an instance subscribes to a user's channel while it holds a socket of
 * that user (and to a room's while a local socket is in it), so cross-instance traffic grows with
 * interest, not with the number of instances.
 */
@Injectable()
export class Node implements OnModuleInit {
  private readonly logger = new Logger(Node.name);
  private readonly noticeHandlers = new Map<string, (payload: string) => void>();
  private batchHandler: (room: string, payload: string) => void = () => undefined;
  private forwardHandler: (payload: string) => void = () => undefined;
  /** Subscriptions on their way, by channel. */
  private readonly subscribing = new Map<string, Promise<void>>();
  /** Whether publications go into streams (`HISTORY_SIZE` > 0). */
  readonly streams: boolean;

  constructor(
    @Inject(Broker) private readonly broker: Broker,
    private readonly hub: Hub,
    private readonly instance: Instance,
    private readonly metrics: MetricsService,
    config: AppConfig,
  ) {
    this.streams = config.history.size > 0;
  }

  async onModuleInit(): Promise<void> {
    this.metrics.bindSubscribedChannels(() => this.broker.subscriptions);
    this.broker.onMessage((channel, message, offset, epoch) =>
      this.receive(channel, message, offset, epoch),
    );
    await Promise.all(
      [ALL, CONTROL, this.instanceChannel(this.instance.id)].map((c) => this.broker.subscribe(c)),
    );
  }

  get available(): boolean {
    return this.broker.available;
  }

  /**
   * Interest in a channel, as `Streams.enter` declares it once the hub indexed a connection: the
   * channel's first local member subscribes; the next ones wait until that subscription took
   * effect, so that what they read of the stream afterwards misses nothing live.
   */
  async interest(channel: string, first: boolean): Promise<void> {
    await (first ? this.subscribe(channel) : this.subscribing.get(channel));
  }

  /** Call after the hub removed the connection: the user's last local socket unsubscribes. */
  async untrack(connection: Connection): Promise<void> {
    if (this.hub.ofUser(connection.userId).length === 0) {
      await this.broker.unsubscribe(userChannel(connection.userId));
    }
  }

  async unsubscribeRoom(room: string): Promise<void> {
    await this.broker.unsubscribe(roomChannel(room));
  }

  /**
   * Sends an event frame to every matching socket in the cluster, through the broker, which
   * serves this instance's sockets as it publishes (see `Broker`).
   *
   * @throws BroadcastUnavailableError (nothing was sent then).
   */
  async publishEvents(
    channels: readonly string[],
    frame: string,
    exceptConnectionId = '',
  ): Promise<void> {
    this.assertAvailable();
    const message = `${this.header('e', exceptConnectionId)}\n${frame}`;
    await Promise.all(channels.map((channel) => this.broker.publish(channel, message)));
  }

  /**
   * Publishes an event frame into each channel's stream (a user's or a room's): each copy gets
   * the next offset of its stream and is kept for recovery, and the sockets receive it with
   * `"offset"` added. With history off it is `publishEvents`.
   *
   * @param frame a serialized frame (a JSON object); a room's carries `"room"` at the top level
   * @throws BroadcastUnavailableError (nothing was sent then).
   */
  async publishToStreams(
    channels: readonly string[],
    frame: string,
    exceptConnectionId = '',
  ): Promise<void> {
    if (!this.streams) {
      return this.publishEvents(channels, frame, exceptConnectionId);
    }
    this.assertAvailable();
    const message = `${this.header('e', exceptConnectionId)}\n${frame}`;
    await inBatches(channels, STREAM_PUBLISH_CONCURRENCY, async (channel) => {
      // A user's stream is kept only for users who can recover it (who connected lately): a
      // publication to users who never did stores nothing for them.
      await this.broker.publishToStream(channel, message, channel.startsWith(USER_CHANNEL_PREFIX));
    });
  }

  /** Closes the sockets of a user, a session or one connection, on whichever instance holds them. */
  async close(
    target:
      { userId: string } | { sessionId: string } | { connectionId: string; instanceId: string },
    code: number,
    reason: string,
  ): Promise<void> {
    this.assertAvailable();
    let channel: string;
    const command: CloseCommand = { code, reason };
    if ('connectionId' in target) {
      channel = this.instanceChannel(target.instanceId);
      command.connectionId = target.connectionId;
    } else if ('sessionId' in target) {
      channel = CONTROL;
      command.sessionId = target.sessionId;
    } else {
      channel = userChannel(target.userId);
    }
    if ('instanceId' in target && target.instanceId === this.instance.id) {
      this.closeLocal(channel, command); // a socket of this instance: nobody else to tell
      return;
    }
    await this.broker.publish(channel, `${this.header('c', '')}\n${JSON.stringify(command)}`);
  }

  /**
   * Tells every instance, this one included, something that is not for sockets (e.g. a
   * revocation to keep in memory), on the control channel.
   *
   * @throws BroadcastUnavailableError
   */
  async notice(topic: string, payload: string): Promise<void> {
    this.assertAvailable();
    await this.broker.publish(CONTROL, `${this.header('n', topic)}\n${payload}`);
  }

  /**
   * Sends a room's batch (`PresenceBatches`) to the other instances with members in the room, as
   * one message on the room's channel.
   *
   * @throws BroadcastUnavailableError
   */
  async publishBatch(room: string, payload: string): Promise<void> {
    this.assertAvailable();
    await this.broker.publish(
      roomChannel(room),
      `${this.header('b', this.instance.id)}\n${payload}`,
    );
  }

  /**
   * Called when this instance subscribed its channels again after the link to the others dropped:
   * what they sent meanwhile (batches, notices) never came.
   */
  onResubscribed(listener: () => void): void {
    this.broker.onResubscribed(listener);
  }

  /**
   * Hands client frames to the instance that holds their connection.
   *
   * @throws BroadcastUnavailableError
   */
  async forward(instanceId: string, payload: string): Promise<void> {
    this.assertAvailable();
    await this.broker.publish(
      this.instanceChannel(instanceId),
      `${this.header('f', '')}\n${payload}`,
    );
  }

  /** Handles the client frames other instances forward to this one. */
  onForwarded(handler: (payload: string) => void): void {
    this.forwardHandler = handler;
  }

  /** Handles the batches other instances send for rooms with local members. */
  onBatch(handler: (room: string, payload: string) => void): void {
    this.batchHandler = handler;
  }

  /** Sends one serialized frame to the room's local members (this instance's sockets only). */
  deliverToRoom(room: string, frame: string): void {
    this.deliver(roomChannel(room), frame, '');
  }

  /**
   * Tells one instance something that is not for sockets (e.g. a traced frame for the instance
   * that streams the trace), on its own channel.
   *
   * @throws BroadcastUnavailableError
   */
  async noticeTo(instanceId: string, topic: string, payload: string): Promise<void> {
    this.assertAvailable();
    await this.broker.publish(
      this.instanceChannel(instanceId),
      `${this.header('n', topic)}\n${payload}`,
    );
  }

  /** Handles the notices of one topic. */
  onNotice(topic: string, handler: (payload: string) => void): void {
    this.noticeHandlers.set(topic, handler);
  }

  /** Fails before anything is sent, so a call either goes everywhere or reports that it did not. */
  private assertAvailable(): void {
    if (!this.broker.available) {
      throw new BroadcastUnavailableError();
    }
  }

  /** Subscribes, and lets the channel's next local sockets wait until that took effect. */
  private subscribe(channel: string): Promise<void> {
    const done: Promise<void> = this.broker.subscribe(channel).finally(() => {
      if (this.subscribing.get(channel) === done) {
        this.subscribing.delete(channel);
      }
    });
    this.subscribing.set(channel, done);
    return done;
  }

  /** `<kind>|<published at, ms>|<except, or a topic>|<the publishing instance>` */
  private header(kind: Kind, except: string): string {
    return `${kind}|${Date.now()}|${except}|${this.instance.id}`;
  }

  private instanceChannel(instanceId: string): string {
    return `i:${instanceId}`;
  }

  private receive(channel: string, message: string, offset: number, epoch: string): void {
    const newline = message.indexOf('\n');
    const [kind, publishedAt, except, origin] = message.slice(0, newline).split('|');
    const payload = message.slice(newline + 1);
    if (kind === 'e') {
      const recipients =
        offset > 0
          ? this.deliverPublication(channel, withOffset(payload, offset), epoch, offset, except)
          : this.deliver(channel, payload, except);
      if (recipients > 0) {
        // Written to the sockets now: what the clients waited since the publish call.
        this.metrics.deliveryLag(
          origin === this.instance.id ? 'local' : 'remote',
          Number(publishedAt),
        );
      }
    } else if (kind === 'c') {
      this.closeLocal(channel, JSON.parse(payload) as CloseCommand);
    } else if (kind === 'n') {
      this.noticeHandlers.get(except)?.(payload);
    } else if (kind === 'f') {
      this.forwardHandler(payload);
    } else if (kind === 'b') {
      if (except !== this.instance.id && channel.startsWith('r:')) {
        this.batchHandler(channel.slice(2), payload);
      }
    } else {
      this.logger.warn({ msg: 'unknown bus message kind dropped', kind, channel });
    }
  }

  /**
   * Sends one serialized frame to every local socket the channel names, and answers how many got
   * it. From the second recipient on, every socket gets the same UTF-8 bytes, encoded once.
   */
  private deliver(channel: string, frame: string, exceptConnectionId: string): number {
    let bytes: string | Buffer = frame;
    let recipients = 0;
    for (const connection of this.localSockets(channel)) {
      if (connection.id !== exceptConnectionId) {
        if (++recipients === 2) {
          bytes = Buffer.from(frame);
        }
        connection.send(bytes);
      }
    }
    return recipients;
  }

  /** Like `deliver`, for a stream's publication: a socket recovering the stream holds it. */
  private deliverPublication(
    channel: string,
    frame: string,
    epoch: string,
    offset: number,
    exceptConnectionId: string,
  ): number {
    let bytes: string | Buffer = frame;
    let recipients = 0;
    for (const connection of this.localSockets(channel)) {
      if (connection.id !== exceptConnectionId) {
        if (++recipients === 2) {
          bytes = Buffer.from(frame);
        }
        connection.publish(channel, epoch, offset, bytes);
      }
    }
    return recipients;
  }

  private closeLocal(channel: string, command: CloseCommand): void {
    const targets =
      command.connectionId !== undefined
        ? [this.hub.get(command.connectionId)].filter((c): c is Connection => c !== undefined)
        : command.sessionId !== undefined
          ? this.hub.ofSession(command.sessionId)
          : this.localSockets(channel);
    for (const connection of [...targets]) {
      connection.close(command.code, command.reason);
    }
  }

  private localSockets(channel: string): Iterable<Connection> {
    if (channel === ALL) {
      return this.hub.all();
    }
    if (channel.startsWith('u:')) {
      return this.hub.ofUser(channel.slice(2));
    }
    if (channel.startsWith('r:')) {
      return this.hub.ofRoom(channel.slice(2));
    }
    return [];
  }
}

/**
 * The frame a socket receives for a stream publication, from what the broker carried or kept
 * (`<header>\n<frame>`): the frame with `"offset"` added at the end, at the top level.
 */
export function publicationFrame(message: string, offset: number): string {
  return withOffset(message.slice(message.indexOf('\n') + 1), offset);
}

function withOffset(frame: string, offset: number): string {
  return `${frame.slice(0, -1)},"offset":${offset}}`;
}
