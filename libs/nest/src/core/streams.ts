import { Inject, Injectable } from '@nestjs/common';
import type { ServerMessage, StreamPosition, StreamRecovery } from '@switchboard/protocol';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { Connection } from './connection';
import { Broker } from './broker/broker.interface';
import { Node, publicationFrame } from './node';

/** What `recover` found, and how to finish once the reply carrying it was sent. */
export interface Catchup {
  recovery: StreamRecovery;
  /** Sends the missed publications, then the live ones that waited, and ends the hold. */
  readonly finish: () => void;
}

/** A stream a connection enters: its channel, and how the hub indexes the connection for it. */
export interface StreamEntry {
  channel: string;
  /** Puts the connection in the hub's index; true when it is the stream's first local member. */
  index(): boolean;
}

/**
 * Entering streams and reading them: a socket entering a stream (its user stream at the welcome,
 * a room's at `room.join`, the one order both use) and scrollback (`room.history`). Publishing is
 * the node's.
 *
 * Recovery, the order that makes it exact: the socket holds the stream's live publications
 * (`Connection.hold`) before it can receive any, the instance subscribes, then `recover` reads
 * the position and what was missed in one step; the reply goes out, then `finish` sends the
 * missed publications and, of what waited, only the offsets after the position. Each offset
 * reaches the client once, in order.
 */
@Injectable()
export class Streams {
  private readonly size: number;

  constructor(
    @Inject(Broker) private readonly broker: Broker,
    private readonly node: Node,
    private readonly metrics: MetricsService,
    config: AppConfig,
  ) {
    this.size = config.history.size;
  }

  /**
   * A connection entering a stream, in the one order that makes its delivery exact: hold the
   * stream's live publications, index the connection in the hub, subscribe this instance (the
   * first local member) or wait for the subscription on its way, then read where the stream stands
   * and, with `since`, what was missed. The caller sends its reply carrying `recovery`, then calls
   * `finish`. With history off nothing is held or read: the result is undefined.
   *
   * @throws StoreUnavailableError, BroadcastUnavailableError or ConnectionClosedError (the socket
   *   closed while the subscription was on its way): the connection is still indexed and holds the
   *   channel; the caller releases the hold (`Connection.releaseAll`) or leaves.
   */
  async enter(
    connection: Connection,
    entry: StreamEntry,
    since?: StreamPosition,
  ): Promise<Catchup | undefined> {
    const { channel } = entry;
    if (this.enabled) {
      connection.hold(channel); // before the hub can route the stream's publications to it
    }
    await this.node.interest(channel, entry.index());
    if (!this.enabled) {
      return undefined;
    }
    connection.assertOpen(); // nothing read for a socket that closed meanwhile
    return this.recover(connection, channel, since);
  }

  /** Whether streams are on (`HISTORY_SIZE` > 0). */
  get enabled(): boolean {
    return this.size > 0;
  }

  /**
   * Where the stream stands and, when the client gave `since`, whether everything after it is
   * still in history (the end of `enter`). The connection holds the channel.
   *
   * @throws StoreUnavailableError (the connection still holds the channel: release or close it)
   */
  private async recover(
    connection: Connection,
    channel: string,
    since?: StreamPosition,
  ): Promise<Catchup> {
    if (since === undefined) {
      const position = await this.position(channel);
      return { recovery: { position }, finish: () => connection.release(channel, position) };
    }
    this.metrics.historyRead('recovery');
    const { position, publications } = await this.broker.history(channel, {
      after: since.offset,
      limit: this.size,
    });
    const missed = position.offset - since.offset;
    const recovered =
      since.epoch === position.epoch &&
      missed >= 0 &&
      publications.length === missed &&
      (missed === 0 || publications[0].offset === since.offset + 1);
    this.metrics.recovery(recovered ? 'recovered' : 'reset');
    if (!recovered) {
      return {
        recovery: { position, recovered: false, missed: 0 },
        finish: () => connection.release(channel, position),
      };
    }
    return {
      recovery: { position, recovered: true, missed },
      finish: () => {
        for (const { message, offset } of publications) {
          connection.send(publicationFrame(message, offset));
        }
        connection.release(channel, position);
      },
    };
  }

  /**
   * Where the stream stands now (a stream with no epoch yet gets one).
   *
   * @throws StoreUnavailableError
   */
  async position(channel: string): Promise<StreamPosition> {
    return (await this.broker.history(channel, { limit: 0 })).position;
  }

  /**
   * The stream's last `limit` publications before offset `before` (or the last ones), oldest
   * first, as the frames that were sent.
   *
   * @throws StoreUnavailableError
   */
  async history(
    channel: string,
    limit: number,
    before?: number,
  ): Promise<{ position: StreamPosition; messages: ServerMessage[] }> {
    this.metrics.historyRead('scrollback');
    const { position, publications } = await this.broker.history(channel, { before, limit });
    const messages = publications.map(
      ({ message, offset }) => JSON.parse(publicationFrame(message, offset)) as ServerMessage,
    );
    return { position, messages };
  }
}

/**
 * `since=<epoch>:<offset>` from an upgrade URL. A malformed value asks for a recovery that cannot
 * succeed (an epoch no stream has): the welcome then says `recovered: false`.
 */
export function parseSince(raw: string | null): StreamPosition | undefined {
  if (raw === null) {
    return undefined;
  }
  const colon = raw.lastIndexOf(':');
  const offset = Number(raw.slice(colon + 1));
  if (colon <= 0 || colon > 64 || !Number.isSafeInteger(offset) || offset < 0) {
    return { epoch: '', offset: 0 };
  }
  return { epoch: raw.slice(0, colon), offset };
}
