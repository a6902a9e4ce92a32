import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, type OnApplicationBootstrap, type Type } from '@nestjs/common';
import { HttpAdapterHost, ModuleRef } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import { type ServerOptions, WebSocketServer, type WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config';
import { CORE_GATEWAY_PATH, HostGateways } from '../host/host-gateways';
import { SwitchboardSocket } from '../host/switchboard-socket';
import { HandshakeObserver } from './handshake.observer';
import { UnauthenticatedConnections } from './unauthenticated-connections';
import { type HandshakeDecision, type Reject, WsGuard } from './ws.guard';

/** Where the adapter finds Switchboard's providers and the HTTP server: the application itself. */
export interface WsAdapterContext {
  get<T>(type: Type<T>): T;
  getHttpServer(): HttpServer;
}

/** What the adapter hands the gateway with each accepted socket. */
export type AcceptedHandshake = Extract<HandshakeDecision, { kind: 'accept' }>;

/**
 * Owns the WebSocket upgrade on the shared HTTP server. Every upgrade request goes through
 * `WsGuard` before anything else happens; rejected ones get a plain HTTP answer and no upgrade.
 * The gateway does its own message parsing (Nest's stock handler drops bad input silently), so
 * Nest's message binding is turned off here.
 *
 * Nest asks it for a server for every gateway: Switchboard's own (`CORE_GATEWAY_PATH`) gets the
 * WebSocket server on `WS_PATH`; a host application's gateways share `HostGateways`' emitter,
 * which hands them each welcomed connection as a `SwitchboardSocket` with their handlers bound.
 * `SwitchboardModule` installs this adapter itself unless the host set one
 * (`app.useWebSocketAdapter(new SwitchboardWsAdapter(app))` is the same).
 *
 * Until a connection is an accepted WebSocket it holds little and not for long: at most
 * `MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP` of them per address, an upgrade's checks within
 * `HANDSHAKE_TIMEOUT_MS`, a refused socket until its answer is written, and a socket this server
 * closes until the client answers the close frame or `wsCloseTimeoutMs` passes.
 */
export class SwitchboardWsAdapter extends WsAdapter {
  private readonly log = new Logger(SwitchboardWsAdapter.name);
  private readonly upgradeServers: Array<{
    http: HttpServer;
    listener: UpgradeListener;
    admit: (socket: Socket) => void;
  }> = [];

  constructor(private readonly app: WsAdapterContext) {
    super();
  }

  override create(_port: number, gateway?: { path?: string }): WebSocketServer {
    const hosts = this.app.get(HostGateways);
    if (gateway?.path !== CORE_GATEWAY_PATH) {
      // A host's gateway: it hears of connections once Switchboard has welcomed them.
      return hosts.server as unknown as WebSocketServer;
    }
    hosts.coreAttached = true;
    const config = this.app.get(AppConfig);
    const guard = this.app.get(WsGuard);
    const observer = this.app.get(HandshakeObserver);
    // `closeTimeout` (ws 8.23, not in @types/ws yet) bounds every close this server starts: a
    // refused upgrade's, a policy close's (1008, 4003, 4009…), the drain's. A client that never
    // answers the close frame would otherwise hold the socket for ws' default 30 s.
    const options: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      clientTracking: false,
      maxPayload: config.ws.maxPayloadBytes,
      perMessageDeflate: false,
      closeTimeout: config.timings.wsCloseTimeoutMs,
    };
    const wss = new WebSocketServer(options);
    const unauthenticated = this.app.get(UnauthenticatedConnections);
    const { handshakeTimeoutMs } = config;
    wss.on('error', (error) => this.log.error({ msg: 'websocket server error', err: error }));

    const listener: UpgradeListener = (req, socket, head) => {
      // Until ws takes the socket over, a reset during the async checks would be an unhandled
      // 'error' event.
      const onSocketError = (error: Error): void =>
        this.log.debug({
          msg: 'socket error during handshake',
          code: (error as NodeJS.ErrnoException).code,
        });
      socket.on('error', onSocketError);
      // The HTTP server bounded the wait for the headers; this bounds the checks (a slow store)
      // and, for a refused upgrade, the writing of its answer to a peer that does not read.
      let decided = false;
      let timedOut = false;
      const deadline = setTimeout(() => {
        if (!decided) {
          timedOut = true;
          observer.timedOut(req);
        }
        socket.destroy();
      }, handshakeTimeoutMs);
      const clearDeadline = (): void => clearTimeout(deadline);
      socket.once('close', clearDeadline);
      void guard.check(req).then((decision) => {
        decided = true;
        if (decision.kind === 'reject') {
          if (!timedOut) {
            observer.decided(decision, req);
            writeHttpError(socket, decision);
          }
          return;
        }
        const { admission } = decision;
        // ws may refuse a malformed upgrade without calling back: the reservation goes with the
        // socket, and so does the gate's place of an accepted one.
        const release = (): void => {
          admission.release();
          if (decision.kind === 'accept') {
            decision.pass.release();
          }
        };
        socket.once('close', release);
        if (socket.destroyed) {
          release();
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          clearDeadline();
          socket.off('close', clearDeadline);
          socket.off('error', onSocketError);
          socket.off('close', release);
          // Counted once upgraded: a socket that went away meanwhile was never accepted.
          observer.decided(decision, req);
          if (decision.kind === 'close') {
            admission.release();
            ws.close(decision.code, decision.reason);
            return;
          }
          unauthenticated.authenticated(req.socket);
          wss.emit('connection', ws, req, decision);
        });
      });
    };
    const http = this.app.getHttpServer();
    http.on('connection', unauthenticated.admit);
    http.on('upgrade', listener);
    this.upgradeServers.push({ http, listener, admit: unauthenticated.admit });
    return wss;
  }

  override bindMessageHandlers(
    client: WebSocket | SwitchboardSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    // Switchboard's gateway reads its sockets itself; a host gateway's handlers are kept on the
    // connection, for the message router to hand them the types that are not built in.
    if (client instanceof SwitchboardSocket) {
      for (const { message, callback } of handlers) {
        client.handlers.set(String(message), { callback, transform });
      }
    }
  }

  override bindClientDisconnect(
    client: WebSocket | SwitchboardSocket,
    callback: (...args: unknown[]) => void,
  ): void {
    if (client instanceof SwitchboardSocket) {
      client.onDisconnect(callback);
      return;
    }
    super.bindClientDisconnect(client, callback);
  }

  /** Sockets belong to the gateway, which closes them on shutdown; this only stops the server. */
  override close(server: WebSocketServer): Promise<void> {
    if (!(server instanceof WebSocketServer)) {
      return Promise.resolve(); // the host gateways' emitter
    }
    return new Promise((resolve) => server.close(() => resolve()));
  }

  override async dispose(): Promise<void> {
    for (const { http, listener, admit } of this.upgradeServers) {
      http.off('upgrade', listener);
      http.off('connection', admit);
    }
    this.upgradeServers.length = 0;
    await super.dispose();
  }
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

function writeHttpError(
  socket: Duplex,
  { status, message, retryAfterS, retryAfterMs }: Reject,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({
    statusCode: status,
    error: STATUS_CODES[status],
    message,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(retryAfterS === undefined ? [] : [`Retry-After: ${retryAfterS}`]),
  ];
  // Nothing reads an upgrade's socket any more, so the peer's FIN would never be seen and the
  // half-open socket would stay: it goes once the answer is handed to the kernel, as in ws'
  // own refusals.
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * Puts `SwitchboardWsAdapter` on the application unless its bootstrap set an adapter already, so
 * that importing `SwitchboardModule` is all a host does; and refuses to start when the
 * application's adapter is another one (Switchboard's gateway would not get its upgrades).
 *
 * Nest gives modules no way to set the WebSocket adapter: it lives on the application's
 * `ApplicationConfig`, which this reaches through the container behind `ModuleRef`. Should a
 * future Nest hide it, the check at bootstrap still names the one line a host then adds.
 */
@Injectable()
export class WsAdapterInstaller implements OnApplicationBootstrap {
  constructor(
    moduleRef: ModuleRef,
    adapterHost: HttpAdapterHost,
    private readonly hosts: HostGateways,
  ) {
    const settings = (
      moduleRef as unknown as {
        container?: {
          applicationConfig?: { getIoAdapter(): unknown; setIoAdapter(adapter: unknown): void };
        };
      }
    ).container?.applicationConfig;
    if (settings !== undefined && !settings.getIoAdapter()) {
      settings.setIoAdapter(
        new SwitchboardWsAdapter({
          get: (type) => moduleRef.get(type, { strict: false }),
          getHttpServer: () => adapterHost.httpAdapter.getHttpServer() as HttpServer,
        }),
      );
    }
  }

  onApplicationBootstrap(): void {
    if (!this.hosts.coreAttached) {
      throw new Error(
        'Switchboard needs its WebSocket adapter: call app.useWebSocketAdapter(new SwitchboardWsAdapter(app)) instead of another adapter (docs/nest.md)',
      );
    }
  }
}
