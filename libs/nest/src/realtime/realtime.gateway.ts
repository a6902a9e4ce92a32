import { DrainService, reconnectHint } from './connections/drain.service';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type BeforeApplicationShutdown, Logger } from '@nestjs/common';
import { type OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { CloseCode, ServerMessageType, type WelcomeData } from '@switchboard/protocol';
import { AppConfig, messagesPerWindowOf } from '../config/app-config';
import { Connection } from '../core/connection';
import { serverFrame } from '../core/frames';
import { Hub } from '../core/hub';
import { Node, userChannel } from '../core/node';
import { type Catchup, Streams } from '../core/streams';
import { MetricsService } from '../metrics/metrics.service';
import { Lease } from '../redis/lease';
import { ConnectionRegistrar } from './connections/connection-registrar';
import { attach, socketListeners, wsErrorCloseCode } from './connections/socket-listeners';
import type { AcceptedHandshake } from './handshake/ws.adapter';
import { MessageRouter } from './message-router';
import { CORE_GATEWAY_PATH, HostGateways } from './host/host-gateways';
import { RoomsService } from './rooms/rooms.service';
import { SessionLifecycle } from './sessions/session-lifecycle';
import { Tracer } from './trace/tracer';

/**
 * The life of an accepted socket, as wiring: accept (hub, user channel, registry, welcome, session
 * timers), read (the message router), close (everything the socket held, once its messages are
 * done), and the shutdown hand-over. The handshake was decided by `WsGuard` in the adapter; the
 * heartbeat, the session revalidation and the drain run on their own.
 */
// The path only tells Switchboard's adapter this gateway from the host's; the upgrade is on WS_PATH.
@WebSocketGateway({ path: CORE_GATEWAY_PATH })
export class RealtimeGateway implements OnGatewayConnection, BeforeApplicationShutdown {
  private readonly logger = new Logger(RealtimeGateway.name);
  /** Clean-ups of closed sockets still running (Redis round trips); shutdown waits for them. */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(
    private readonly config: AppConfig,
    private readonly hub: Hub,
    private readonly node: Node,
    private readonly streams: Streams,
    private readonly router: MessageRouter,
    private readonly sessions: SessionLifecycle,
    private readonly rooms: RoomsService,
    private readonly registrar: ConnectionRegistrar,
    private readonly metrics: MetricsService,
    private readonly lease: Lease,
    private readonly hostGateways: HostGateways,
    private readonly drain: DrainService,
    private readonly tracer: Tracer,
  ) {}

  private readonly listeners = socketListeners({
    receive: (connection, text) => this.router.receive(connection, text),
    closed: (connection, code) => this.closed(connection, code),
    failed: (connection, error) => {
      // ws closes the socket itself on a protocol violation, with the code it put on the error.
      connection.closeCodeSent ??= wsErrorCloseCode(error);
      this.logger.debug({ msg: 'socket error', connectionId: connection.id, code: error.code });
    },
  });

  async handleConnection(
    socket: WebSocket,
    req: IncomingMessage,
    handshake: AcceptedHandshake,
  ): Promise<void> {
    const { session, admission } = handshake;
    const connection = new Connection({
      id: randomUUID(),
      socket,
      wire: req.socket, // the TCP (or TLS) stream that ws took over from the upgrade
      session,
      ip: admission.ip,
      connectedAt: Date.now(),
      sendBufferMaxBytes: this.config.ws.sendBufferMaxBytes,
      messagesPerWindow: messagesPerWindowOf(this.config, session),
      messageWindowMs: this.config.ws.messageWindowMs,
      metrics: this.metrics,
    });
    attach(socket, connection);
    /* eslint-disable @typescript-eslint/unbound-method -- ws calls listeners with the socket as `this` */
    socket.on('pong', this.listeners.pong);
    socket.on('message', this.listeners.message);
    socket.on('error', this.listeners.error);
    socket.once('close', this.listeners.close);
    /* eslint-enable @typescript-eslint/unbound-method */
    await this.accept(connection, handshake);
  }

  /**
   * Welcomes a connection of any transport whose close is already wired to `closed`: the
   * WebSocket's above, a Server-Sent Events stream's (`SseEndpoint`), with what the welcome of
   * that transport carries besides (`sendToken`).
   */
  async accept(
    connection: Connection,
    { admission, pass, since }: AcceptedHandshake,
    extra: Pick<WelcomeData, 'sendToken'> = {},
  ): Promise<void> {
    try {
      await this.welcome(connection, admission, since, extra);
    } finally {
      pass.release(); // its handshake ended, welcomed or not
    }
  }

  /**
   * Enters the user's stream (the hub takes the connection there, in the same turn as the
   * listeners above: a close cannot come before it), registers it cluster-wide, then sends the
   * welcome: once the client sees it, every broadcast reaches it and the per-user limit has been
   * applied.
   */
  private async welcome(
    connection: Connection,
    admission: AcceptedHandshake['admission'],
    since: AcceptedHandshake['since'],
    extra: Pick<WelcomeData, 'sendToken'>,
  ): Promise<void> {
    const { session } = connection;
    const ownStream = userChannel(session.userId);
    const [entered] = await Promise.allSettled([
      this.streams.enter(
        connection,
        {
          channel: ownStream,
          index: () => {
            this.hub.add(connection, admission);
            return this.hub.ofUser(session.userId).length === 1;
          },
        },
        since,
      ),
      this.registrar.register(connection),
    ]);
    let catchup: Catchup | undefined;
    if (entered.status === 'fulfilled') {
      catchup = entered.value;
    } else {
      connection.releaseAll(ownStream); // nothing replayed: whatever waited goes out as it is
      if (connection.open) {
        this.logger.warn({
          msg: 'user stream not entered',
          connectionId: connection.id,
          err: entered.reason as unknown,
        });
      }
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
        messagesPerWindow: messagesPerWindowOf(this.config, session),
        windowMs: this.config.ws.messageWindowMs,
      },
      ...(catchup?.recovery ?? (since && { recovered: false, missed: 0 })),
      ...extra,
    };
    this.tracer.attach(connection);
    connection.send(serverFrame(ServerMessageType.Welcome, welcome));
    catchup?.finish();
    this.sessions.schedule(connection);
    this.hostGateways.connected(connection);
    this.logger.log({
      msg: 'connection accepted',
      connectionId: connection.id,
      transport: connection.transport,
      userId: session.userId,
      ip: connection.ip,
    });
  }

  /**
   * This instance's entries go while Redis is still connected: those of the sockets still open,
   * and those of the sockets closed by the drain whose clean-up is still running. When they all
   * went, the lease is given up; otherwise another instance purges what is left.
   */
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    if (signal !== undefined && !this.hub.draining) {
      // A host application's SIGTERM (`app.enableShutdownHooks()`): the same drain as the
      // standalone server's, which drains before it closes the application.
      await this.drain.drain(Date.now() + this.config.shutdown.timeoutMs);
    }
    const connections = [...this.hub.all()];
    await Promise.allSettled([
      ...connections.map((connection) => this.rooms.leaveAll(connection)),
      ...connections.map((connection) => this.registrar.unregister(connection)),
      ...this.cleanups,
    ]);
    if (!this.registrar.hasUnremoved && !this.rooms.hasUnremoved) {
      await this.lease
        .release()
        .catch((error: unknown) =>
          this.logger.warn({ msg: 'lease not released; it expires by itself', err: error }),
        );
    }
    for (const connection of this.hub.all()) {
      connection.close(CloseCode.GoingAway, reconnectHint(this.config.shutdown.reconnectSpreadMs));
    }
  }

  /** A connection of any transport closed: everything it held goes. */
  closed(connection: Connection, code: number): void {
    this.sessions.unschedule(connection);
    if (!this.hub.remove(connection)) {
      return;
    }
    this.hostGateways.disconnected(connection);
    const recorded = connection.closeCodeSent ?? code;
    const durationMs = Date.now() - connection.connectedAt;
    this.logger.log({
      msg: 'connection closed',
      connectionId: connection.id,
      transport: connection.transport,
      userId: connection.userId,
      ip: connection.ip,
      code: recorded,
      durationMs,
    });
    this.metrics.closed(recorded, durationMs, connection.transport);
    this.node.untrack(connection).catch((error: unknown) =>
      this.logger.warn({
        msg: 'user channel not unsubscribed',
        connectionId: connection.id,
        err: error,
      }),
    );
    this.track(this.registrar.unregister(connection));
    // A message still in flight may be joining a room: leave the rooms once it has finished, so
    // that whatever it did is undone (messages queued behind it are dropped).
    this.track(connection.idle().then(() => this.rooms.leaveAll(connection)));
  }

  /** Keeps a closed socket's clean-up (which handles its own errors) in view until it settles. */
  private track(cleanup: Promise<void>): void {
    this.cleanups.add(cleanup);
    void cleanup.finally(() => this.cleanups.delete(cleanup));
  }
}
