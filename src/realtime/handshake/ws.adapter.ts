import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config';
import { HandshakeObserver } from './handshake.observer';
import { type HandshakeDecision, WsGuard } from './ws.guard';

/** What the adapter hands the gateway with each accepted socket. */
export type AcceptedHandshake = Extract<HandshakeDecision, { kind: 'accept' }>;

/**
 * Owns the WebSocket upgrade on the shared HTTP server. Every upgrade request goes through
 * `WsGuard` before anything else happens; rejected ones get a plain HTTP answer and no upgrade.
 * The gateway does its own message parsing (Nest's stock handler drops bad input silently), so
 * Nest's message binding is turned off here.
 */
export class SwitchboardWsAdapter extends WsAdapter {
  private readonly log = new Logger(SwitchboardWsAdapter.name);
  private readonly upgradeServers: Array<{ http: HttpServer; listener: UpgradeListener }> = [];

  constructor(private readonly app: INestApplicationContext & { getHttpServer(): HttpServer }) {
    super(app);
  }

  override create(): WebSocketServer {
    const config = this.app.get(AppConfig);
    const guard = this.app.get(WsGuard);
    const observer = this.app.get(HandshakeObserver);
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: config.ws.maxPayloadBytes,
      perMessageDeflate: false,
    });
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
      void guard.check(req).then((decision) => {
        if (decision.kind === 'reject') {
          observer.decided(decision, req);
          writeHttpError(socket, decision.status, decision.message, decision.retryAfterS);
          return;
        }
        const { admission } = decision;
        // ws may refuse a malformed upgrade without calling back: the reservation goes with the socket.
        const release = (): void => admission.release();
        socket.once('close', release);
        if (socket.destroyed) {
          admission.release();
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          socket.off('error', onSocketError);
          socket.off('close', release);
          // Counted once upgraded: a socket that went away meanwhile was never accepted.
          observer.decided(decision, req);
          if (decision.kind === 'close') {
            admission.release();
            ws.close(decision.code, decision.reason);
            return;
          }
          wss.emit('connection', ws, req, decision);
        });
      });
    };
    const http = this.app.getHttpServer();
    http.on('upgrade', listener);
    this.upgradeServers.push({ http, listener });
    return wss;
  }

  override bindMessageHandlers(
    _client: WebSocket,
    _handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    // The gateway reads its sockets itself.
  }

  /** Sockets belong to the gateway, which closes them on shutdown; this only stops the server. */
  override close(server: WebSocketServer): Promise<void> {
    return new Promise((resolve) => server.close(() => resolve()));
  }

  override async dispose(): Promise<void> {
    for (const { http, listener } of this.upgradeServers) {
      http.off('upgrade', listener);
    }
    this.upgradeServers.length = 0;
    await super.dispose();
  }
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

function writeHttpError(
  socket: Duplex,
  status: number,
  message: string,
  retryAfterS?: number,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ statusCode: status, error: STATUS_CODES[status], message });
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(retryAfterS === undefined ? [] : [`Retry-After: ${retryAfterS}`]),
  ];
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
