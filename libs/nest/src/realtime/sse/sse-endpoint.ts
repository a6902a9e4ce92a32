import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  type IncomingMessage,
  type RequestListener,
  type Server as HttpServer,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { CloseCode } from '@switchboard/protocol';
import { bearerToken } from '../../common/bearer';
import { sha256 } from '../../common/sha256';
import { AppConfig, messagesPerWindowOf } from '../../config/app-config';
import { Instance } from '../../config/instance';
import { Connection } from '../../core/connection';
import { Hub } from '../../core/hub';
import { ErrorTracker } from '../../errors/error-tracker';
import { Node } from '../../core/node';
import { MetricsService } from '../../metrics/metrics.service';
import { HandshakeObserver } from '../handshake/handshake.observer';
import { UnauthenticatedConnections } from '../handshake/unauthenticated-connections';
import { type Reject, WsGuard } from '../handshake/ws.guard';
import { MessageRouter } from '../message-router';
import { RealtimeGateway } from '../realtime.gateway';
import { SseTransport } from './sse-transport';

/** The largest `POST <SSE_PATH>/messages` body, and the most frames in one. */
export const MAX_POST_BYTES = 64 * 1024;
export const MAX_POST_FRAMES = 50;
/** The header that names the connection a POST's frames are for. */
export const CONNECTION_HEADER = 'x-switchboard-connection';

const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  // nginx buffers a proxied response unless told not to; an event stream must flow.
  'X-Accel-Buffering': 'no',
};
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Frames for a connection of another instance, as they travel there. */
interface Forwarded {
  /** The connection id. */
  c: string;
  /** SHA-256 of the send token the POST carried. */
  t: string;
  /** The frames, as JSON text. */
  f: string[];
}

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Server-Sent Events for clients whose WebSocket cannot open (a proxy that breaks upgrades):
 * `GET <SSE_PATH>` opens a stream that carries exactly the frames a WebSocket would, and
 * `POST <SSE_PATH>/messages` brings the client's frames. The stream is decided by the same
 * `WsGuard` as an upgrade and held by a `Connection` like a socket's, so every rule (limits,
 * validation, flood, size, expiry, logout, drain, recovery, admission) applies unchanged.
 *
 * The welcome carries a `sendToken` that authorizes the POSTs of that connection only. It starts
 * with the id of the instance that holds the connection: a POST that reaches another instance
 * (a load balancer without sticky sessions) is forwarded there through the bus, and checked there.
 *
 * The two routes are served before the host's HTTP framework sees the request (its `request`
 * listeners are wrapped, as Engine.IO does), alike on Express and Fastify.
 */
@Injectable()
export class SseEndpoint implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SseEndpoint.name);
  private readonly streamPath: string;
  private readonly messagesPath: string;
  /** SHA-256 of each SSE connection's send token, by connection id. */
  private readonly tokens = new Map<string, string>();
  private restore: (() => void) | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly guard: WsGuard,
    private readonly observer: HandshakeObserver,
    private readonly gateway: RealtimeGateway,
    private readonly hub: Hub,
    private readonly node: Node,
    private readonly instance: Instance,
    private readonly router: MessageRouter,
    private readonly metrics: MetricsService,
    private readonly adapterHost: HttpAdapterHost,
    private readonly unauthenticated: UnauthenticatedConnections,
    private readonly errors: ErrorTracker,
  ) {
    this.streamPath = config.ws.ssePath;
    this.messagesPath = `${config.ws.ssePath}/messages`;
  }

  onApplicationBootstrap(): void {
    this.node.onForwarded((payload) => this.forwarded(payload));
    const server = this.adapterHost.httpAdapter?.getHttpServer() as HttpServer | undefined;
    if (server === undefined) {
      return; // an application without an HTTP server has no streams either
    }
    const framework = server.listeners('request') as RequestListener[];
    const dispatch: RequestListener = (req, res) => {
      const path = pathOf(req.url);
      if (path === this.streamPath || path === this.messagesPath) {
        this.serve(req, res, path);
        return;
      }
      for (const listener of framework) {
        listener.call(server, req, res);
      }
    };
    server.removeAllListeners('request');
    server.on('request', dispatch);
    this.restore = () => {
      server.off('request', dispatch);
      framework.forEach((listener) => server.on('request', listener));
    };
  }

  onApplicationShutdown(): void {
    this.restore?.();
    this.restore = null;
  }

  private serve(req: IncomingMessage, res: ServerResponse, path: string): void {
    res.on('error', () => undefined); // a reset while answering: 'close' follows
    const origin = req.headers.origin;
    const allowed = origin === undefined || this.config.allowedOrigins.has(origin);
    if (origin !== undefined && allowed) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
      res.setHeader('Vary', 'Origin');
    }
    // A stream's origin is the guard's first check (counted as `forbidden_origin`, like an
    // upgrade's); the other requests are refused here.
    if (!allowed && !(path === this.streamPath && req.method === 'GET')) {
      sendError(res, 403, 'origin not allowed');
      return;
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, POST',
        'Access-Control-Allow-Headers': `Authorization, Content-Type, ${CONNECTION_HEADER}`,
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    if (path === this.streamPath) {
      void this.open(req, res);
    } else if (req.method !== 'POST') {
      sendError(res, 405, 'frames are sent with POST');
    } else {
      this.receive(req, res).catch((error: unknown) => {
        const problem = error instanceof HttpProblem ? error : null;
        if (problem === null) {
          this.logger.error({ msg: 'event stream frames failed', err: error });
          this.errors.capture(error, {
            component: 'sse',
            route: `POST ${this.messagesPath}`,
            transport: 'sse',
          });
        }
        sendError(res, problem?.status ?? 500, problem?.message ?? 'internal error');
      });
    }
  }

  /** `GET <SSE_PATH>`: the handshake, then the stream. */
  private async open(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Bounds the checks (a slow store), as for an upgrade.
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      this.observer.timedOut(req, 'sse');
      res.destroy();
    }, this.config.handshakeTimeoutMs);
    const decision = await this.guard.check(req, 'sse');
    clearTimeout(deadline);
    if (decision.kind === 'reject') {
      if (!timedOut) {
        this.observer.decided(decision, req, 'sse');
        sendError(res, decision.status, decision.message, decision);
      }
      return;
    }
    if (res.destroyed || res.writableEnded) {
      decision.admission.release(); // the client went away during the checks
      if (decision.kind === 'accept') {
        decision.pass.release();
      }
      return;
    }
    this.observer.decided(decision, req, 'sse');
    // The server's idle bound on connections (Fastify's `connectionTimeout`) is for requests; a
    // stream is quiet between its keep-alive comments, as an upgraded socket is between pings.
    req.socket.setTimeout(0);
    res.writeHead(200, STREAM_HEADERS);
    if (decision.kind === 'close') {
      decision.admission.release();
      res.end(
        `event: close\ndata: ${JSON.stringify({ code: decision.code, reason: decision.reason })}\n\n`,
      );
      return;
    }
    const transport = new SseTransport(res);
    const sendToken = `${this.instance.id}.${randomBytes(24).toString('base64url')}`;
    const connection = new Connection({
      id: randomUUID(),
      socket: transport,
      transport: 'sse',
      wire: res,
      session: decision.session,
      ip: decision.admission.ip,
      connectedAt: Date.now(),
      sendBufferMaxBytes: this.config.ws.sendBufferMaxBytes,
      messagesPerWindow: messagesPerWindowOf(this.config, decision.session),
      messageWindowMs: this.config.ws.messageWindowMs,
      metrics: this.metrics,
    });
    this.tokens.set(connection.id, sha256(sendToken));
    this.unauthenticated.authenticated(req.socket); // an accepted stream, like a socket
    transport.onClose((code) => {
      this.tokens.delete(connection.id);
      this.gateway.closed(connection, code);
    });
    res.flushHeaders();
    await this.gateway.accept(connection, decision, { sendToken });
  }

  /** `POST <SSE_PATH>/messages`: the frames of one connection, here or on its instance. */
  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const connectionId = req.headers[CONNECTION_HEADER];
    const token = bearerToken(req.headers.authorization);
    if (typeof connectionId !== 'string' || token === null) {
      throw new HttpProblem(
        401,
        `${CONNECTION_HEADER} and Authorization: Bearer <sendToken> are required`,
      );
    }
    const frames = parseFrames(await readBody(req, this.config.handshakeTimeoutMs));
    const owner = token.slice(0, Math.max(0, token.indexOf('.')));
    if (owner === this.instance.id) {
      if (!this.deliver(connectionId, sha256(token), frames)) {
        throw new HttpProblem(401, 'unknown connection or wrong send token: open a new stream');
      }
    } else if (owner.length > 0) {
      const forwarded: Forwarded = { c: connectionId, t: sha256(token), f: frames };
      try {
        await this.node.forward(owner, JSON.stringify(forwarded));
      } catch {
        res.setHeader('Retry-After', '2');
        throw new HttpProblem(503, 'service unavailable');
      }
    } else {
      throw new HttpProblem(401, 'unknown connection or wrong send token: open a new stream');
    }
    res.writeHead(202, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ accepted: frames.length }));
  }

  private forwarded(payload: string): void {
    try {
      const { c, t, f } = JSON.parse(payload) as Forwarded;
      if (!this.deliver(c, t, f)) {
        this.logger.debug({ msg: 'forwarded frames for an unknown connection dropped' });
      }
    } catch (error) {
      this.logger.warn({ msg: 'unreadable forwarded frames dropped', err: error });
    }
  }

  /**
   * Hands the frames to the connection as if they had come on a socket, one by one; false when
   * no open connection here has that token.
   */
  private deliver(connectionId: string, tokenHash: string, frames: readonly string[]): boolean {
    const expected = this.tokens.get(connectionId);
    const connection = this.hub.get(connectionId);
    if (expected === undefined || connection === undefined || !sameText(expected, tokenHash)) {
      return false;
    }
    for (const frame of frames) {
      if (!connection.open) {
        break;
      }
      if (Buffer.byteLength(frame) > this.config.ws.maxPayloadBytes) {
        connection.close(CloseCode.MessageTooBig, 'Max payload size exceeded'); // as ws says it
        break;
      }
      this.router.receive(connection, frame);
    }
    return true;
  }
}

function pathOf(url: string | undefined): string {
  if (url === undefined) {
    return '';
  }
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

/** The body's text: at most `MAX_POST_BYTES` of UTF-8, within `timeoutMs`. */
function readBody(req: IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(
      () => fail(new HttpProblem(408, 'the body did not arrive in time')),
      timeoutMs,
    );
    const fail = (error: Error): void => {
      clearTimeout(timer);
      req.removeAllListeners('data');
      req.resume();
      reject(error);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_POST_BYTES) {
        fail(new HttpProblem(413, `the body must be at most ${MAX_POST_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      clearTimeout(timer);
      try {
        resolve(UTF8.decode(Buffer.concat(chunks)));
      } catch {
        reject(new HttpProblem(400, 'the body is not UTF-8'));
      }
    });
    req.once('error', (error) => fail(error));
  });
}

/**
 * One frame or an array of frames, each an object, as JSON text for the message router: a lone
 * frame as the client wrote it (its size is the client's), those of an array serialized again.
 */
function parseFrames(body: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new HttpProblem(400, 'the body must be JSON: one frame or an array of frames');
  }
  const frames = Array.isArray(parsed) ? parsed : [parsed];
  if (frames.length === 0 || frames.length > MAX_POST_FRAMES) {
    throw new HttpProblem(400, `an array of 1-${MAX_POST_FRAMES} frames, please`);
  }
  if (
    !frames.every((frame) => typeof frame === 'object' && frame !== null && !Array.isArray(frame))
  ) {
    throw new HttpProblem(400, 'each frame must be an object: { type, id?, data? }');
  }
  return Array.isArray(parsed) ? frames.map((frame) => JSON.stringify(frame)) : [body];
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  hints: Pick<Reject, 'retryAfterS' | 'retryAfterMs'> = {},
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    statusCode: status,
    error: STATUS_CODES[status],
    message,
    ...(hints.retryAfterMs === undefined ? {} : { retryAfterMs: hints.retryAfterMs }),
  });
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    ...(hints.retryAfterS === undefined ? {} : { 'Retry-After': String(hints.retryAfterS) }),
  });
  res.end(body);
}
