import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { CloseCode, retryAfterReason, type StreamPosition } from '@switchboard/protocol';
import { AuthService } from '../../auth/auth.service';
import { CookieSessions } from '../../auth/cookie-sessions';
import { CROSS_SITE_COOKIE_REFUSAL } from '../../auth/session.guard';
import type { Session } from '../../core/session';
import { TokenError } from '../../auth/token.errors';
import { bearerToken } from '../../common/bearer';
import { clientIp } from '../../common/client-ip';
import { StoreUnavailableError } from '../../common/errors';
import { ErrorTracker } from '../../errors/error-tracker';
import { NoopErrorTracker } from '../../errors/noop-error-tracker';
import { AppConfig } from '../../config/app-config';
import type { ConnectionOutcome } from '../../metrics/metrics.service';
import { RateLimiter } from '../../rate-limit/rate-limiter.interface';
import { Lease } from '../../redis/lease';
import { TicketsService } from '../../tickets/tickets.service';
import { type Admission, Hub } from '../../core/hub';
import type { TransportKind } from '@switchboard/protocol';
import {
  AdmissionGate,
  type AdmissionPass,
  type AdmissionRefusal,
  retryAfterSeconds,
} from '../../core/admission-gate';
import { parseSince } from '../../core/streams';

/** How a handshake ended: the `outcome` label of `ws_connections_total` (docs/operations.md, Metrics). */
export type HandshakeOutcome = ConnectionOutcome;

/** The handshake ends before the upgrade with an HTTP status. */
export interface Reject {
  kind: 'reject';
  status: 400 | 403 | 404 | 405 | 429 | 503;
  message: string;
  retryAfterS?: number;
  /** The admission gate's time to come back, also in the body (`{ retryAfterMs }`). */
  retryAfterMs?: number;
  outcome: HandshakeOutcome | null;
}
/** The socket is upgraded, then closed at once with a code the client can act on. */
export interface CloseAfterUpgrade {
  kind: 'close';
  code: number;
  reason: string;
  outcome: HandshakeOutcome;
  admission: Admission;
}
export interface Accept {
  kind: 'accept';
  session: Session;
  admission: Admission;
  /** The admission gate's place, held until the welcome went out (or never will). */
  pass: AdmissionPass;
  /** Where the client's own stream stood for it (`since=<epoch>:<offset>`), to recover from. */
  since?: StreamPosition;
}
export type HandshakeDecision = Reject | CloseAfterUpgrade | Accept;

/** Query parameters that would carry an access token in the URL, where it would be logged. */
const TOKEN_QUERY_PARAMS = ['token', 'access_token', 'jwt'];
const MINUTE_MS = 60_000;
const BUSY_RETRY_AFTER_S = 5;

/**
 * Decides every WebSocket upgrade and every Server-Sent Events stream, in the order of
 * docs/protocol.md (How a connection is authenticated): path, origin (and for a cookie session,
 * an allowed one), capacity, IP limit, credentials (ticket, Bearer JWT or cookie session), connect
 * attempts, session state. The per-user limit (row 8)
 * is applied by the gateway once the connection is accepted. Never throws.
 */
@Injectable()
export class WsGuard {
  private readonly logger = new Logger(WsGuard.name);

  constructor(
    private readonly config: AppConfig,
    private readonly hub: Hub,
    private readonly gate: AdmissionGate,
    private readonly tickets: TicketsService,
    private readonly auth: AuthService,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    private readonly lease: Lease,
    private readonly cookies: CookieSessions,
    private readonly errors: ErrorTracker = new NoopErrorTracker(),
  ) {}

  async check(
    req: IncomingMessage,
    transport: TransportKind = 'websocket',
  ): Promise<HandshakeDecision> {
    const url = parseUrl(req.url);
    const path = transport === 'websocket' ? this.config.ws.path : this.config.ws.ssePath;
    if (url === null || url.pathname !== path) {
      return reject(404, 'not found', null);
    }
    // Before anything is reserved or redeemed: ws would refuse a malformed upgrade only after the
    // ticket was spent.
    const malformed = transport === 'websocket' ? upgradeProblem(req) : streamProblem(req);
    if (malformed !== null) {
      return reject(malformed.status, malformed.message, null);
    }
    if (!this.originsAllowed(req)) {
      return reject(403, 'origin not allowed', 'forbidden_origin');
    }
    // A browser sends its cookies with a socket that any site opens: a cookie session needs an
    // allowed Origin, which a request without explicit credentials must then have.
    if (
      !url.searchParams.has('ticket') &&
      bearerToken(req.headers.authorization) === null &&
      this.cookies.offered(req.headers) === 'cross-site'
    ) {
      return reject(403, CROSS_SITE_COOKIE_REFUSAL, 'forbidden_origin');
    }
    // Row 3: the admission gate (draining, handshakes in progress, event-loop delay), before any
    // Redis round trip or JWT verification.
    const pass = this.gate.enter();
    if (pass.refused !== undefined) {
      return refusedByGate(pass);
    }
    if (this.lease.restoring) {
      pass.release();
      return { ...reject(503, 'instance is restoring its state', null), retryAfterS: 1 };
    }
    const ip = clientIp(req, this.config.trustProxy);
    const { maxConnections, maxConnectionsPerIp } = this.config.limits;
    const admission = this.hub.reserve(ip, maxConnections, maxConnectionsPerIp);
    if (admission === 'capacity') {
      pass.release();
      return {
        ...reject(503, 'instance at capacity', 'capacity'),
        retryAfterS: BUSY_RETRY_AFTER_S,
      };
    }
    if (admission === 'ip_limit') {
      pass.release();
      return reject(429, 'too many connections from this address', 'ip_limit');
    }
    try {
      const decision = await this.authenticate(req, url, admission, pass);
      if (decision.kind !== 'accept') {
        admission.release();
        pass.release();
      }
      return decision;
    } catch (error) {
      admission.release();
      pass.release();
      if (error instanceof StoreUnavailableError) {
        this.logger.warn({ msg: 'handshake refused: store unavailable', store: error.store });
        return { ...reject(503, 'service unavailable', null), retryAfterS: 2 };
      }
      this.logger.error({ msg: 'handshake failed', err: error });
      this.errors.capture(error, { component: 'handshake', transport });
      return { ...reject(503, 'service unavailable', null), retryAfterS: 2 };
    }
  }

  /**
   * Row 2: every origin the request names is allowed. Version 8 (hybi-08) browsers name it in
   * `Sec-WebSocket-Origin` instead of `Origin`; a request may carry neither (a non-browser client).
   */
  private originsAllowed(req: IncomingMessage): boolean {
    const { origin, 'sec-websocket-origin': legacy } = req.headers;
    const allowed = this.config.allowedOrigins;
    return (
      (origin === undefined || allowed.has(origin)) &&
      (legacy === undefined || (typeof legacy === 'string' && allowed.has(legacy)))
    );
  }

  private async authenticate(
    req: IncomingMessage,
    url: URL,
    admission: Admission,
    pass: AdmissionPass,
  ): Promise<HandshakeDecision> {
    // Shedding: a client that left is served nothing, and work that would start too late is
    // refused before the ticket is redeemed (it stays good for a retry).
    if (req.socket.destroyed) {
      return reject(400, 'client went away', null);
    }
    const late = pass.check();
    if (late !== null) {
      return refusedByGate(late);
    }
    const close = (code: number, reason: string, outcome: HandshakeOutcome): CloseAfterUpgrade => ({
      kind: 'close',
      code,
      reason,
      outcome,
      admission,
    });

    if (TOKEN_QUERY_PARAMS.some((name) => url.searchParams.has(name))) {
      return close(
        CloseCode.Unauthorized,
        'tokens are not accepted in the URL; use a ticket',
        'unauthorized',
      );
    }
    let session: Session;
    const ticket = url.searchParams.get('ticket');
    const bearer = bearerToken(req.headers.authorization);
    if (ticket !== null) {
      const claims = await this.tickets.redeem(ticket);
      if (claims === null) {
        return close(CloseCode.Unauthorized, 'invalid, expired or used ticket', 'unauthorized');
      }
      const { ticketExpiresAt: _, ...ticketSession } = claims;
      try {
        return await this.checkSession(ticketSession, url, admission, pass, close);
      } catch (error) {
        // Refused with 503 after the ticket was taken: it is given back for the client's retry.
        await this.tickets
          .giveBack(ticket, claims)
          .catch((giveBackError: unknown) =>
            this.logger.warn({ msg: 'ticket not given back', err: giveBackError }),
          );
        throw error;
      }
    }
    try {
      if (bearer !== null) {
        session = await this.auth.verify(bearer);
      } else {
        const found = await this.cookies.authenticate(req);
        if (found.kind === 'cross-site') {
          return reject(403, CROSS_SITE_COOKIE_REFUSAL, 'forbidden_origin');
        }
        if (found.kind === 'none') {
          return close(CloseCode.Unauthorized, 'missing ticket', 'unauthorized');
        }
        session = found.session;
      }
    } catch (error) {
      if (!(error instanceof TokenError)) {
        throw error;
      }
      switch (error.failure) {
        case 'expired':
          return close(CloseCode.SessionExpired, 'session expired', 'expired');
        case 'revoked':
          return close(CloseCode.SessionRevoked, 'session revoked', 'revoked');
        case 'missing':
        case 'invalid':
          return close(
            CloseCode.Unauthorized,
            bearer !== null ? 'invalid access token' : 'invalid session cookie',
            'unauthorized',
          );
        default: {
          const unreachable: never = error.failure;
          throw new Error(`unknown token failure ${String(unreachable)}`);
        }
      }
    }
    return this.checkSession(session, url, admission, pass, close);
  }

  /** The checks after the credentials, on the session they named: attempts, expiry, revocation. */
  private async checkSession(
    session: Session,
    url: URL,
    admission: Admission,
    pass: AdmissionPass,
    close: (code: number, reason: string, outcome: HandshakeOutcome) => CloseAfterUpgrade,
  ): Promise<HandshakeDecision> {
    const { connectAttemptsPerMinute } = this.config.limits;
    const attempts = await this.limiter.hit(
      `connect:${session.userId}`,
      connectAttemptsPerMinute,
      MINUTE_MS,
    );
    if (!attempts.allowed) {
      return close(
        CloseCode.TooManyAttempts,
        retryAfterReason(attempts.resetInMs / 1000),
        'rate_limited',
      );
    }
    if (this.auth.isExpired(session)) {
      return close(CloseCode.SessionExpired, 'session expired', 'expired');
    }
    if (await this.auth.isRevoked(session)) {
      return close(CloseCode.SessionRevoked, 'session revoked', 'revoked');
    }
    return {
      kind: 'accept',
      session,
      admission,
      pass,
      since: parseSince(url.searchParams.get('since')),
    };
  }
}

/** RFC 6455: a 16-byte nonce, base64. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** RFC 7230 `token`: what each listed subprotocol must be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * What ws's `handleUpgrade` would refuse, checked up front (method, `Upgrade`, the key, the
 * version, the subprotocol list), so that a malformed request costs no ticket and no admission.
 */
export function upgradeProblem(
  req: IncomingMessage,
): { status: 400 | 405; message: string } | null {
  if (req.method !== 'GET') {
    return { status: 405, message: 'a WebSocket upgrade must be a GET' };
  }
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
    return { status: 400, message: 'invalid Upgrade header' };
  }
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !WEBSOCKET_KEY.test(key)) {
    return { status: 400, message: 'missing or invalid Sec-WebSocket-Key header' };
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    return { status: 400, message: 'missing or invalid Sec-WebSocket-Version header (use 13)' };
  }
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    const list = protocols.split(',').map((protocol) => protocol.trim());
    if (!list.every((protocol) => TOKEN.test(protocol)) || new Set(list).size !== list.length) {
      return { status: 400, message: 'invalid Sec-WebSocket-Protocol header' };
    }
  }
  return null;
}

/** An event stream is opened with a GET. */
function streamProblem(req: IncomingMessage): { status: 405; message: string } | null {
  return req.method === 'GET'
    ? null
    : { status: 405, message: 'an event stream is opened with GET' };
}

/** The gate's refusal: `503` with its time to come back. */
function refusedByGate(refusal: AdmissionRefusal): Reject {
  const message =
    refusal.refused === 'draining' ? 'instance is shutting down' : 'instance busy; retry later';
  return {
    ...reject(503, message, 'capacity'),
    retryAfterS: retryAfterSeconds(refusal.retryAfterMs),
    retryAfterMs: refusal.retryAfterMs,
  };
}

function reject(
  status: Reject['status'],
  message: string,
  outcome: HandshakeOutcome | null,
): Reject {
  return { kind: 'reject', status, message, outcome };
}

function parseUrl(raw: string | undefined): URL | null {
  try {
    return new URL(raw ?? '/', 'http://localhost');
  } catch {
    return null;
  }
}
