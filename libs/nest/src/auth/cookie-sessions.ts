import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { MAX_USER_ID_LENGTH } from '@switchboard/protocol';
import { sanitizeText } from '../common/sanitize';
import { ANONYMOUS_COOKIE, AppConfig } from '../config/app-config';
import { Clock } from '../config/clock';
import type { Session } from '../core/session';
import { ANONYMOUS_PREFIX, AnonymousIdentities } from './anonymous-identities';
import { AuthService } from './auth.service';
import { TokenError } from './token.errors';

/** What a host's `authenticate` answers for a request from a signed-in browser. */
export interface HostSession {
  /** The user's id (1–256 characters, not starting with `anon:`). */
  userId: string;
  /** The name others see. @default the user id */
  name?: string;
  /** What logout and `BroadcastService.disconnectSession` name. @default the user id */
  sessionId?: string;
  /**
   * When the server stops honouring it, in ms since the epoch: its sockets get `session.expiring`
   * and then close with `4002`, and the client comes back through `authenticate` again.
   * @default 24 hours after the request
   */
  expiresAt?: number;
  /** Glob patterns of the rooms it may join (as a token's `rooms` claim). @default any room */
  rooms?: readonly string[] | null;
}

/**
 * A host application's own session store (express-session, passport, its own cookies), asked
 * for a request's user at the ticket route and at the upgrade: `SwitchboardHooks.authenticate`.
 * Answers null when the request is not signed in.
 */
export type Authenticate = (
  request: IncomingMessage,
) => HostSession | null | Promise<HostSession | null>;

/** The hook's provider; `NO_HOST_SESSIONS` when the host gave none. */
export const HOST_AUTHENTICATE = Symbol('SwitchboardHooks.authenticate');
export const NO_HOST_SESSIONS: Authenticate = () => null;

/** A host session without `expiresAt` is honoured this long. */
export const HOST_SESSION_DEFAULT_LIFETIME_MS = 24 * 3600_000;

/**
 * How a request's cookies authenticated it: `none` (it carries no cookie credential: the caller
 * asks for a ticket or a token), `cross-site` (it does, without an allowed `Origin`: refused
 * `403`), or the session.
 */
export type CookieAuthentication =
  { kind: 'none' } | { kind: 'cross-site' } | { kind: 'session'; session: Session };

/**
 * Sessions that a browser sends by itself, with every request (docs/protocol.md, Cookies): the
 * host's `authenticate`, the access token in the `AUTH_COOKIE` cookie, an anonymous visitor's
 * cookie, asked in that order. Because a browser sends cookies with requests that other sites
 * make, a request authenticated this way must come from a page of `ALLOWED_ORIGINS`: without an
 * `Origin`, or with `null`, it is refused (Cross-Site WebSocket Hijacking), whatever is allowed
 * for requests that carry their credentials explicitly.
 */
@Injectable()
export class CookieSessions {
  private readonly hostSessions: boolean;

  constructor(
    private readonly config: AppConfig,
    private readonly auth: AuthService,
    private readonly anonymous: AnonymousIdentities,
    private readonly clock: Clock,
    @Inject(HOST_AUTHENTICATE) private readonly host: Authenticate,
  ) {
    this.hostSessions = host !== NO_HOST_SESSIONS;
  }

  /** Whether a browser's cookies can authenticate here at all (then CORS allows credentials). */
  get enabled(): boolean {
    return this.hostSessions || this.config.authCookie !== undefined || this.anonymous.enabled;
  }

  /**
   * Synchronous and cheap, before any work: whether the request offers a cookie credential and,
   * if so, whether its origin may use it.
   */
  offered(headers: IncomingHttpHeaders): 'none' | 'cross-site' | 'offered' {
    const cookies = headers.cookie;
    if (cookies === undefined || cookies === '' || !this.enabled) {
      return 'none';
    }
    const jar = parseCookies(cookies);
    const candidate =
      this.hostSessions ||
      (this.config.authCookie !== undefined && jar.has(this.config.authCookie)) ||
      (this.anonymous.enabled && jar.has(ANONYMOUS_COOKIE));
    if (!candidate) {
      return 'none';
    }
    const { origin } = headers;
    return origin !== undefined && origin !== 'null' && this.config.allowedOrigins.has(origin)
      ? 'offered'
      : 'cross-site';
  }

  /**
   * The session the request's cookies name, revocation checked.
   *
   * @throws TokenError (`invalid`, `expired`, `revoked`); StoreUnavailableError; whatever the
   *   host's `authenticate` throws (its bug: the caller answers 5xx)
   */
  async authenticate(request: IncomingMessage): Promise<CookieAuthentication> {
    const offered = this.offered(request.headers);
    if (offered !== 'offered') {
      return { kind: offered };
    }
    const jar = parseCookies(request.headers.cookie ?? '');
    let session: Session | null = null;
    if (this.hostSessions) {
      const answer = await this.host(request);
      session = answer === null ? null : this.fromHost(answer);
    }
    const token =
      this.config.authCookie === undefined ? undefined : jar.get(this.config.authCookie);
    if (session === null && token !== undefined) {
      return { kind: 'session', session: await this.auth.authenticate(token) };
    }
    const visitor = jar.get(ANONYMOUS_COOKIE);
    if (session === null && visitor !== undefined && this.anonymous.enabled) {
      session = this.anonymous.read(visitor);
    }
    if (session === null) {
      return { kind: 'none' };
    }
    if (await this.auth.isRevoked(session)) {
      throw new TokenError('revoked', 'session revoked');
    }
    return { kind: 'session', session };
  }

  /** A host's answer as a session. @throws Error naming what the hook got wrong */
  private fromHost(answer: HostSession): Session {
    const { userId } = answer;
    if (
      typeof userId !== 'string' ||
      userId.length === 0 ||
      userId.length > MAX_USER_ID_LENGTH ||
      userId.startsWith(ANONYMOUS_PREFIX)
    ) {
      throw new Error(
        `authenticate() answered an invalid userId: 1-${MAX_USER_ID_LENGTH} characters, not starting with ${ANONYMOUS_PREFIX}`,
      );
    }
    const name = typeof answer.name === 'string' ? sanitizeText(answer.name).slice(0, 128) : '';
    return {
      userId,
      name: name === '' ? userId : name,
      sessionId: answer.sessionId ?? userId,
      expiresAt: answer.expiresAt ?? this.clock.now() + HOST_SESSION_DEFAULT_LIFETIME_MS,
      rooms: answer.rooms === undefined || answer.rooms === null ? null : [...answer.rooms],
    };
  }
}

/** A `Cookie` header's pairs; the first of a repeated name wins (RFC 6265 §5.4 order). */
export function parseCookies(header: string): Map<string, string> {
  const jar = new Map<string, string>();
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) {
      continue;
    }
    const name = pair.slice(0, equals).trim();
    let value = pair.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1);
    }
    if (name !== '' && !jar.has(name)) {
      jar.set(name, value);
    }
  }
  return jar;
}
