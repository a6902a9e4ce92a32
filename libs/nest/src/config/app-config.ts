import type { LevelWithSilent } from 'pino';

export type JwtKeySource =
  | { kind: 'secret'; secret: string; generated: boolean }
  | { kind: 'public-key'; pem: string }
  | { kind: 'jwks'; url: string };

/**
 * `POST /api/broadcast` calls per second per calling address, on each instance: far above what a
 * backend publishes by design, it stops a runaway loop before it floods every socket.
 */
export type RedisMode = 'single' | 'cluster';

export const BROADCAST_API_CALLS_PER_SECOND = 1000;

/**
 * Handshakes in progress at once (ticket requests and upgrades, from arrival to the answer or the
 * welcome), at most. A normal connect rate keeps a few dozen in progress; past this an instance
 * only queues work that finishes after its clients gave up.
 */
export const MAX_HANDSHAKES_IN_PROGRESS = 256;

/** The validated configuration, built once at boot from the environment (see config.schema.ts). */
export class AppConfig {
  nodeEnv!: string;
  production!: boolean;
  port!: number;
  host!: string;
  /** Unset: embedded mode. In `cluster` mode, a comma-separated list of seed nodes. */
  redisUrl!: string | undefined;
  /** `single`: one Redis (or Sentinel-fronted); `cluster`: Redis Cluster, sharded pub/sub. */
  redisMode!: RedisMode;
  redisPrefix!: string;
  jwt!: {
    key: JwtKeySource;
    issuer: string | undefined;
    audience: string | undefined;
    clockToleranceS: number;
  };
  devAuth!: boolean;
  /**
   * `AUTH_COOKIE`: the ticket route and the upgrade also take the access token from this cookie
   * (only with an allowed `Origin`: docs/protocol.md, Cookies).
   */
  authCookie!: string | undefined;
  /** Anonymous visitors (`ANONYMOUS=true`): `POST /auth/anonymous` and its signed cookie. */
  anonymous!: AnonymousConfig;
  /** `SENTRY_DSN`: errors go to Sentry; unset, nothing of Sentry is loaded. */
  sentryDsn!: string | undefined;
  demo!: boolean;
  allowedOrigins!: ReadonlySet<string>;
  ticketTtlS!: number;
  /** Stream history: publications kept per stream (0: off), and for how long after the last one. */
  history!: { size: number; ttlMs: number };
  /**
   * Presence and typing notices: the changes of `batchMs` reach each member as one frame; rooms
   * above `diffMaxMembers` members get their count instead (and no typing notices).
   */
  presence!: { batchMs: number; diffMaxMembers: number };
  ws!: {
    path: string;
    /** Server-Sent Events: `GET ssePath` opens a stream, `POST ssePath/messages` carries frames. */
    ssePath: string;
    maxPayloadBytes: number;
    heartbeatMs: number;
    sessionRevalidateMs: number;
    messagesPerWindow: number;
    messageWindowMs: number;
    sendBufferMaxBytes: number;
  };
  limits!: {
    maxConnections: number;
    maxConnectionsPerUser: number;
    maxConnectionsPerIp: number;
    connectAttemptsPerMinute: number;
    ticketsPerMinute: number;
    /** Handshakes in progress at once (`MAX_HANDSHAKES_IN_PROGRESS`), not read from the environment. */
    maxHandshakesInProgress: number;
    /** `BROADCAST_API_CALLS_PER_SECOND`, not read from the environment. */
    broadcastApiCallsPerSecond: number;
    /**
     * Connections from one address that have not become an authenticated WebSocket (yet); past
     * it a new connection is dropped when accepted. 0: no bound.
     */
    maxUnauthenticatedPerIp: number;
  };
  trustProxy!: boolean;
  /**
   * How long a client has to send an HTTP request's headers and body, or an upgrade's headers, and
   * how long an idle keep-alive connection stays; an upgrade's checks are bounded by it too.
   */
  handshakeTimeoutMs!: number;
  tls!: { certFile: string; keyFile: string } | undefined;
  /** The admission gate (docs/operations.md, A reconnect storm). */
  admission!: {
    /** `ADMISSION_MAX_WAIT_MS`: a handshake whose work would start later than this is refused. */
    maxWaitMs: number;
  };
  shutdown!: {
    drainMs: number;
    timeoutMs: number;
    /** `RECONNECT_SPREAD_MS`: the `reconnect in <ms>` hints of the drain's `1001`s span this. */
    reconnectSpreadMs: number;
  };
  connectionSpikePer10s!: number;
  metricsToken!: string | undefined;
  broadcastApiKey!: string | undefined;
  /** `ADMIN_TOKEN`: enables `GET /admin/trace` (support staff following one user's frames). */
  adminToken!: string | undefined;
  logLevel!: LevelWithSilent;
  /** Internal intervals, not read from the environment: defaults in `DEFAULT_TIMINGS`. */
  timings!: Timings;
}

/** The messages per `WS_MESSAGE_WINDOW_MS` a session's connections may send. */
export function messagesPerWindowOf(config: AppConfig, session: { anonymous?: true }): number {
  return session.anonymous === true
    ? config.anonymous.messagesPerWindow
    : config.ws.messagesPerWindow;
}

/** The anonymous cookie's name: `__Host-` would forbid it on http:// development servers. */
export const ANONYMOUS_COOKIE = 'switchboard_anon';

export interface AnonymousConfig {
  enabled: boolean;
  /** How long an anonymous identity lives unused; every use renews it. */
  ttlS: number;
  /** Glob patterns of the rooms an anonymous visitor may join (none by default). */
  rooms: readonly string[];
  /** Messages per `WS_MESSAGE_WINDOW_MS` for an anonymous connection. */
  messagesPerWindow: number;
  /**
   * What signs the cookie: `ANONYMOUS_SECRET`, else a key derived from `JWT_SECRET` (never
   * `JWT_SECRET` itself, so that a cookie can never pass as an access token). Empty when disabled.
   */
  secret: Buffer;
}

/**
 * The internal clocks of the server. Production runs the defaults; tests shorten them so that
 * nothing waits seconds for a timer.
 */
export interface Timings {
  /** The session scheduler's resolution: expiry events fire at most this late. @default 250 */
  sessionTickMs: number;
  /** `session.expiring` goes out this long before the token's `exp`. @default 60000 */
  expiryWarningMs: number;
  /** How long a fetched JWKS stays fresh. @default 600000 */
  jwksCacheMaxAgeMs: number;
  /** The least time between two JWKS fetches (an unknown `kid` triggers one). @default 5000 */
  jwksCooldownMs: number;
  /** How long an instance has to purge a dead one it claimed. @default 30000 */
  leaseClaimMs: number;
  /** How often each Redis link is probed with PING, and how long the answer may take. */
  redisProbeIntervalMs: number;
  redisProbeTimeoutMs: number;
  /**
   * How long a socket this server closed may wait for the client's close frame before it is
   * destroyed (ws' `closeTimeout`). @default 1000
   */
  wsCloseTimeoutMs: number;
}

export const DEFAULT_TIMINGS: Readonly<Timings> = {
  sessionTickMs: 250,
  expiryWarningMs: 60_000,
  jwksCacheMaxAgeMs: 10 * 60_000,
  jwksCooldownMs: 5_000,
  leaseClaimMs: 30_000,
  redisProbeIntervalMs: 5_000,
  redisProbeTimeoutMs: 2_000,
  wsCloseTimeoutMs: 1_000,
};
