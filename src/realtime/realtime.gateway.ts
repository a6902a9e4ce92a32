import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type BeforeApplicationShutdown, Inject, Logger } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { RawData, WebSocket } from 'ws';
import { CloseCode, ServerMessageType, type WelcomeData } from '@app/protocol';
import { AuthService } from '../auth/auth.service';
import { Node } from '../core/node';
import { inBatches } from '../common/batches';
import { AppConfig } from '../config/app-config';
import { Instance } from '../config/instance';
import { MetricsService } from '../metrics/metrics.service';
import { InstanceLease } from '../redis/instance-lease';
import { RedisConnections } from '../redis/redis.connections';
import { Connection } from '../core/connection';
import { ConnectionRegistry, type ConnectionEntry } from './connection-registry.interface';
import { serverFrame } from '../core/frames';
import { Hub } from '../core/hub';
import { MessageRouter } from './message-router';
import { RoomsService } from './rooms/rooms.service';
import { SessionLifecycle } from './session-lifecycle';
import type { AcceptedHandshake } from './ws.adapter';

/** Registry entries written back at once after Redis lost them. */
const WRITE_BACK_CONCURRENCY = 200;

/**
 * Holds the accepted sockets: welcome, heartbeat, session lifetime, the per-user limit, and
 * reading messages. The handshake itself was decided by `WsGuard` in the adapter.
 */
@WebSocketGateway()
export class RealtimeGateway
  implements OnGatewayInit, OnGatewayConnection, BeforeApplicationShutdown
{
  private readonly logger = new Logger(RealtimeGateway.name);
  private readonly timers: NodeJS.Timeout[] = [];
  /** Registry entries of closed sockets that could not be removed (Redis was out of reach). */
  private readonly unregistered = new Map<string, ConnectionEntry>();
  /** Clean-ups of closed sockets still running (Redis round trips). */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(
    private readonly config: AppConfig,
    private readonly hub: Hub,
    private readonly router: MessageRouter,
    private readonly sessions: SessionLifecycle,
    private readonly rooms: RoomsService,
    private readonly auth: AuthService,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
    private readonly bus: Node,
    private readonly instance: Instance,
    @Inject(InstanceLease) private readonly lease: InstanceLease | null,
    private readonly metrics: MetricsService,
    @Inject(RedisConnections) private readonly redis: RedisConnections | null,
  ) {}

  /**
   * One set of socket listeners for every socket (ws calls them with the socket as `this`), so
   * that a connection costs no closures of its own.
   */
  private readonly listeners = socketListeners({
    receive: (connection, text) => this.router.receive(connection, text),
    closed: (connection, code) => this.onClose(connection, code),
    failed: (connection, error) => {
      // ws closes the socket itself on a protocol violation, with the code it put on the error.
      connection.closeCodeSent ??= wsErrorCloseCode(error);
      this.logger.debug({ msg: 'socket error', connectionId: connection.id, code: error.code });
    },
  });

  afterInit(): void {
    this.metrics.bindSources(
      () => this.hub.size,
      this.redis ? () => this.redis?.up ?? false : null,
    );
    this.timers.push(setInterval(() => this.heartbeat(), this.config.ws.heartbeatMs));
    this.timers.push(
      setInterval(() => void this.revalidateSessions(), this.config.ws.sessionRevalidateMs),
    );
    // Redis lost this instance's entries (or another instance purged them): write them back.
    this.lease?.onResync(() =>
      inBatches([...this.hub.all()], WRITE_BACK_CONCURRENCY, async (connection) => {
        const entry = this.entryOf(connection);
        await this.registry.add(entry);
        if (this.hub.get(connection.id) === undefined) {
          await this.registry.remove(entry); // closed meanwhile: its own removal came first
        }
      }).then(() => this.unregistered.clear()),
    );
    this.lease?.onPurge((instanceId) => this.registry.purgeInstance(instanceId));
    this.lease?.onRecovered(() => void this.removeUnregistered());
  }

  async handleConnection(
    socket: WebSocket,
    _req: IncomingMessage,
    handshake: AcceptedHandshake,
  ): Promise<void> {
    const { session, admission } = handshake;
    const connection = new Connection({
      id: randomUUID(),
      socket,
      session,
      ip: admission.ip,
      connectedAt: Date.now(),
      sendBufferMaxBytes: this.config.ws.sendBufferMaxBytes,
      messagesPerWindow: this.config.ws.messagesPerWindow,
      messageWindowMs: this.config.ws.messageWindowMs,
      metrics: this.metrics,
    });
    this.hub.add(connection, admission);

    (socket as TrackedSocket)[CONNECTION] = connection;
    /* eslint-disable @typescript-eslint/unbound-method -- ws calls listeners with the socket as `this` */
    socket.on('pong', this.listeners.pong);
    socket.on('message', this.listeners.message);
    socket.on('error', this.listeners.error);
    socket.once('close', this.listeners.close);
    /* eslint-enable @typescript-eslint/unbound-method */

    // Subscribe to the user's channel and register cluster-wide before the welcome: once the
    // client sees it, every broadcast reaches it and the per-user limit has been applied.
    const [tracked] = await Promise.allSettled([
      this.bus.track(connection),
      this.register(connection),
    ]);
    if (tracked.status === 'rejected') {
      this.logger.warn({
        msg: 'user channel not subscribed',
        connectionId: connection.id,
        err: tracked.reason as unknown,
      });
    }
    if (!connection.open) {
      return;
    }

    const welcome: WelcomeData = {
      connectionId: connection.id,
      user: { id: session.userId, name: session.name },
      heartbeatMs: this.config.ws.heartbeatMs,
      sessionExpiresAt: session.expiresAt,
      limits: {
        maxPayload: this.config.ws.maxPayloadBytes,
        messagesPerWindow: this.config.ws.messagesPerWindow,
        windowMs: this.config.ws.messageWindowMs,
      },
    };
    connection.send(serverFrame(ServerMessageType.Welcome, welcome));
    this.sessions.schedule(connection);
    this.logger.log({
      msg: 'connection accepted',
      connectionId: connection.id,
      userId: session.userId,
      ip: connection.ip,
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    for (const timer of this.timers) {
      clearInterval(timer);
    }
    // This instance's entries go while Redis is still connected: those of the sockets still open,
    // and those of the sockets closed by the drain whose clean-up is still running. When they
    // all went, the lease is given up; otherwise another instance purges what is left.
    const connections = [...this.hub.all()];
    const removed = await Promise.allSettled([
      ...connections.map((connection) => this.rooms.leaveAll(connection)),
      ...connections.map((connection) => this.registry.remove(this.entryOf(connection))),
    ]);
    await Promise.allSettled([...this.cleanups]);
    const clean =
      removed.every((result) => result.status === 'fulfilled') &&
      this.unregistered.size === 0 &&
      !this.rooms.hasUnremoved;
    if (this.lease && clean) {
      await this.lease
        .release()
        .catch((error: unknown) =>
          this.logger.warn({ msg: 'lease not released; it expires by itself', err: error }),
        );
    }
    for (const connection of this.hub.all()) {
      connection.close(CloseCode.GoingAway, 'server shutting down');
    }
  }

  private async removeUnregistered(): Promise<void> {
    for (const [connectionId, entry] of [...this.unregistered]) {
      try {
        await this.registry.remove(entry);
        this.unregistered.delete(connectionId);
      } catch (error) {
        this.logger.warn({ msg: 'registry clean-up retry failed', err: error });
        return;
      }
    }
  }

  /** Registers the socket cluster-wide and enforces `MAX_CONNECTIONS_PER_USER`: newest wins. */
  private async register(connection: Connection): Promise<void> {
    const entry = this.entryOf(connection);
    try {
      const entries = await this.registry.add(entry);
      if (!connection.open) {
        // Closed while registering: onClose ran before the entry existed.
        await this.registry.remove(entry);
        return;
      }
      const excess = entries.length - this.config.limits.maxConnectionsPerUser;
      for (const older of entries
        .filter((e) => e.connectionId !== connection.id)
        .slice(0, excess)) {
        await this.replace(older);
      }
    } catch (error) {
      this.logger.warn({
        msg: 'connection registry unavailable; per-user limit not enforced for this socket',
        connectionId: connection.id,
        err: error,
      });
    }
  }

  private async replace(entry: ConnectionEntry): Promise<void> {
    const local = this.hub.get(entry.connectionId);
    if (local !== undefined) {
      local.close(CloseCode.Replaced, 'replaced by a newer connection');
    } else if (entry.instanceId === this.instance.id) {
      // A leftover of a socket that is gone already.
      await this.registry.remove(entry);
    } else {
      await this.bus.close(
        { connectionId: entry.connectionId, instanceId: entry.instanceId },
        CloseCode.Replaced,
        'replaced by a newer connection',
      );
    }
  }

  private onClose(connection: Connection, code: number): void {
    this.sessions.unschedule(connection);
    if (!this.hub.remove(connection)) {
      return;
    }
    const recorded = connection.closeCodeSent ?? code;
    const durationMs = Date.now() - connection.connectedAt;
    this.logger.log({
      msg: 'connection closed',
      connectionId: connection.id,
      userId: connection.userId,
      ip: connection.ip,
      code: recorded,
      durationMs,
    });
    this.metrics.closed(recorded, durationMs);
    this.bus.untrack(connection).catch((error: unknown) =>
      this.logger.warn({
        msg: 'user channel not unsubscribed',
        connectionId: connection.id,
        err: error,
      }),
    );
    const entry = this.entryOf(connection);
    this.track(
      this.registry.remove(entry).catch((error: unknown) => {
        this.unregistered.set(entry.connectionId, entry);
        this.logger.warn({
          msg: 'connection not unregistered yet; retried when Redis is back',
          connectionId: connection.id,
          err: error,
        });
      }),
    );
    // A message still in flight may be joining a room: leave the rooms once it has finished, so
    // that whatever it did is undone (messages queued behind it are dropped).
    this.track(connection.idle().then(() => this.rooms.leaveAll(connection)));
  }

  /** Keeps a closed socket's clean-up (which handles its own errors) in view until it settles. */
  private track(cleanup: Promise<void>): void {
    this.cleanups.add(cleanup);
    void cleanup.finally(() => this.cleanups.delete(cleanup));
  }

  private entryOf(connection: Connection): ConnectionEntry {
    return {
      connectionId: connection.id,
      userId: connection.userId,
      sessionId: connection.session.sessionId,
      instanceId: this.instance.id,
      connectedAt: connection.connectedAt,
    };
  }

  /** Terminates every socket that did not answer the previous ping, and pings the rest. */
  private heartbeat(): void {
    for (const connection of this.hub.all()) {
      if (connection.awaitingPong) {
        this.logger.debug({ msg: 'heartbeat missed', connectionId: connection.id });
        connection.socket.terminate();
        continue;
      }
      connection.awaitingPong = true;
      connection.socket.ping();
    }
  }

  /** The safety net behind the revocation events and expiry timers. */
  private async revalidateSessions(): Promise<void> {
    for (const connection of this.hub.all()) {
      if (this.auth.isExpired(connection.session)) {
        connection.close(CloseCode.SessionExpired, 'session expired');
      }
    }
    try {
      const revoked = await this.auth.revokedAmong(this.hub.sessionIds());
      for (const sessionId of revoked) {
        this.closeSession(sessionId, CloseCode.SessionRevoked, 'session revoked');
      }
    } catch (error) {
      this.logger.warn({ msg: 'session revalidation skipped: store unavailable', err: error });
    }
  }

  private closeSession(sessionId: string, code: number, reason: string): void {
    for (const connection of [...this.hub.ofSession(sessionId)]) {
      connection.close(code, reason);
    }
  }
}

const CONNECTION = Symbol('connection');
type TrackedSocket = WebSocket & { [CONNECTION]?: Connection };

function socketListeners(handlers: {
  receive(connection: Connection, text: string): void;
  closed(connection: Connection, code: number): void;
  failed(connection: Connection, error: Error & { code?: string }): void;
}) {
  return {
    pong(this: TrackedSocket): void {
      const connection = this[CONNECTION];
      if (connection) {
        connection.awaitingPong = false;
      }
    },
    message(this: TrackedSocket, data: RawData, isBinary: boolean): void {
      const connection = this[CONNECTION];
      if (connection === undefined) {
        return;
      }
      if (isBinary) {
        connection.close(CloseCode.UnsupportedData, 'binary frames are not supported');
        return;
      }
      // binaryType is 'nodebuffer' (the default), so a text frame arrives as one Buffer.
      handlers.receive(connection, (data as Buffer).toString('utf8'));
    },
    error(this: TrackedSocket, error: Error & { code?: string }): void {
      const connection = this[CONNECTION];
      if (connection) {
        handlers.failed(connection, error);
      }
    },
    close(this: TrackedSocket, code: number): void {
      const connection = this[CONNECTION];
      if (connection) {
        handlers.closed(connection, code);
      }
    },
  };
}

/**
 * The close code ws sends for a receive error (1002, 1007, 1008, 1009): ws keeps it under a
 * private symbol described `status-code`; null for errors that close nothing (e.g. a reset).
 */
export function wsErrorCloseCode(error: Error): number | null {
  const key = Object.getOwnPropertySymbols(error).find((s) => s.description === 'status-code');
  const code = key === undefined ? undefined : (error as unknown as Record<symbol, unknown>)[key];
  return typeof code === 'number' ? code : null;
}
