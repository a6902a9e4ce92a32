import { createHmac, createPublicKey, randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import type { LevelWithSilent } from 'pino';
import {
  ANONYMOUS_COOKIE,
  type AnonymousConfig,
  AppConfig,
  BROADCAST_API_CALLS_PER_SECOND,
  MAX_HANDSHAKES_IN_PROGRESS,
  DEFAULT_TIMINGS,
  type JwtKeySource,
} from './app-config';
import { ConfigError } from './config.error';

export type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS: readonly string[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];
const MIN_SECRET_LENGTH = 32;

/** Reads one variable; an empty string counts as unset. */
function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) {
    return fallback;
  }
  if (!/^-?\d+$/.test(value)) {
    throw new ConfigError(name, `must be a whole number, got "${value}"`);
  }
  const parsed = Number(value);
  if (parsed < min || parsed > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  }
  return parsed;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) {
    return fallback;
  }
  if (value === 'true' || value === '1') {
    return true;
  }
  if (value === 'false' || value === '0') {
    return false;
  }
  throw new ConfigError(name, `must be true or false, got "${value}"`);
}

function secret(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value !== undefined && value.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(name, `must be at least ${MIN_SECRET_LENGTH} characters long`);
  }
  return value;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const value = raw(env, name);
  if (value === undefined) {
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, `must be a URL, got "${value}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  }
  return value;
}

const REDIS_PROTOCOLS = ['redis:', 'rediss:'];

/** `REDIS_URL` in cluster mode: seed nodes, comma-separated, all `redis://` or all `rediss://`. */
function seeds(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) {
    return undefined;
  }
  const list = value.split(',').map((seed) => seed.trim());
  const protocols = new Set<string>();
  for (const seed of list) {
    let parsed: URL;
    try {
      parsed = new URL(seed);
    } catch {
      throw new ConfigError(name, `must be a comma-separated list of URLs, got "${seed}"`);
    }
    if (!REDIS_PROTOCOLS.includes(parsed.protocol) || parsed.hostname === '') {
      throw new ConfigError(name, `seed "${seed}" must be redis://host:port or rediss://host:port`);
    }
    protocols.add(parsed.protocol);
  }
  if (protocols.size > 1) {
    throw new ConfigError(name, 'mixes redis:// and rediss:// seeds: use one for every node');
  }
  return list.join(',');
}

function origins(env: Env, name: string): Set<string> | undefined {
  const value = raw(env, name);
  if (value === undefined) {
    return undefined;
  }
  const list = value
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
  for (const origin of list) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.origin !== origin) {
      throw new ConfigError(
        name,
        `must list exact origins such as https://app.example.com (scheme, host, optional port, no path or trailing slash), got "${origin}"`,
      );
    }
  }
  return new Set(list);
}

function readableFile(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value !== undefined) {
    try {
      accessSync(value, fsConstants.R_OK);
    } catch {
      throw new ConfigError(name, `names a file that cannot be read: ${value}`);
    }
  }
  return value;
}

function jwtKey(env: Env, production: boolean): JwtKeySource {
  const hsSecret = secret(env, 'JWT_SECRET');
  const publicKey = raw(env, 'JWT_PUBLIC_KEY');
  const jwksUrl = url(env, 'JWT_JWKS_URL', ['https:', 'http:']);
  const chosen = [
    hsSecret && 'JWT_SECRET',
    publicKey && 'JWT_PUBLIC_KEY',
    jwksUrl && 'JWT_JWKS_URL',
  ].filter((name): name is string => Boolean(name));
  if (chosen.length > 1) {
    throw new ConfigError(
      chosen[1],
      `cannot be combined with ${chosen[0]}: set exactly one way to verify tokens`,
    );
  }
  if (publicKey !== undefined) {
    // Accept a PEM given on one line with literal "\n" escapes, as env files often carry it.
    const pem = publicKey.includes('\\n') ? publicKey.replace(/\\n/g, '\n') : publicKey;
    try {
      createPublicKey(pem);
    } catch {
      throw new ConfigError('JWT_PUBLIC_KEY', 'is not a PEM public key (RSA or EC P-256)');
    }
    return { kind: 'public-key', pem };
  }
  if (jwksUrl !== undefined) {
    return { kind: 'jwks', url: jwksUrl };
  }
  if (hsSecret !== undefined) {
    return { kind: 'secret', secret: hsSecret, generated: false };
  }
  if (production) {
    throw new ConfigError(
      'JWT_SECRET',
      'is required in production (or JWT_PUBLIC_KEY, or JWT_JWKS_URL): no key to verify access tokens',
    );
  }
  return { kind: 'secret', secret: randomBytes(32).toString('base64url'), generated: true };
}

/** RFC 6265 `cookie-name` (an RFC 7230 token). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;

function cookieName(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value !== undefined && !COOKIE_NAME.test(value)) {
    throw new ConfigError(
      name,
      `must be a cookie name (letters, digits, !#$%&'*+-.^_\`|~), got "${value}"`,
    );
  }
  return value;
}

/** A comma-separated list of room globs (`*`, `?`). */
function globs(env: Env, name: string): string[] {
  const list = (raw(env, name) ?? '')
    .split(',')
    .map((glob) => glob.trim())
    .filter((glob) => glob !== '');
  for (const glob of list) {
    if (glob.length > 128 || glob.startsWith('user:')) {
      throw new ConfigError(
        name,
        `must list room patterns of at most 128 characters outside user:, got "${glob}"`,
      );
    }
  }
  return list;
}

function anonymous(env: Env, key: JwtKeySource, messagesPerWindow: number): AnonymousConfig {
  const enabled = bool(env, 'ANONYMOUS', false);
  const own = secret(env, 'ANONYMOUS_SECRET');
  let signing = Buffer.alloc(0);
  if (enabled) {
    if (own !== undefined) {
      signing = Buffer.from(own);
    } else if (key.kind === 'secret') {
      signing = createHmac('sha256', key.secret).update('switchboard anonymous cookie').digest();
    } else {
      throw new ConfigError(
        'ANONYMOUS_SECRET',
        `is required with ANONYMOUS=true when tokens are verified with ${key.kind === 'jwks' ? 'JWT_JWKS_URL' : 'JWT_PUBLIC_KEY'} (it signs the visitors' cookies)`,
      );
    }
  }
  return {
    enabled,
    ttlS: int(env, 'ANONYMOUS_TTL_S', 86_400, 60, MAX_ANONYMOUS_TTL_S),
    rooms: globs(env, 'ANONYMOUS_ROOMS'),
    messagesPerWindow: int(
      env,
      'ANONYMOUS_MESSAGES_PER_WINDOW',
      Math.max(1, Math.floor(messagesPerWindow / 2)),
      1,
      1_000_000,
    ),
    secret: signing,
  };
}

/** An anonymous identity lives at most a year unused (its revocation must fit a Redis TTL). */
const MAX_ANONYMOUS_TTL_S = 365 * 86_400;

/**
 * Builds the configuration from the environment. Every default is declared here.
 *
 * @throws ConfigError naming the first variable that is wrong.
 */
const URL_PATH = /^\/[A-Za-z0-9._~\-/]*$/;

export function loadConfig(env: Env): AppConfig {
  const nodeEnv = raw(env, 'NODE_ENV') ?? 'development';
  const production = nodeEnv === 'production';
  const port = int(env, 'PORT', 3000, 0, 65535);
  if (raw(env, 'PRESENCE_EVENTS_MAX_MEMBERS') !== undefined) {
    // Set for a reason: silently ignoring it would change what its rooms receive.
    throw new ConfigError(
      'PRESENCE_EVENTS_MAX_MEMBERS',
      'is gone: presence is batched in every room now (set PRESENCE_DIFF_MAX_MEMBERS and PRESENCE_BATCH_MS instead)',
    );
  }

  const key = jwtKey(env, production);
  const devAuth = bool(env, 'DEV_AUTH', !production && key.kind === 'secret');
  if (devAuth && production) {
    throw new ConfigError('DEV_AUTH', 'must not be true in production (NODE_ENV=production)');
  }
  if (devAuth && key.kind !== 'secret') {
    throw new ConfigError(
      'DEV_AUTH',
      `cannot be true with ${key.kind === 'jwks' ? 'JWT_JWKS_URL' : 'JWT_PUBLIC_KEY'}: dev tokens are signed with JWT_SECRET`,
    );
  }

  const allowedOrigins = origins(env, 'ALLOWED_ORIGINS');
  if (allowedOrigins === undefined || allowedOrigins.size === 0) {
    if (production) {
      throw new ConfigError('ALLOWED_ORIGINS', 'must list at least one origin in production');
    }
  }

  const wsPath = raw(env, 'WS_PATH') ?? '/ws';
  if (!URL_PATH.test(wsPath)) {
    throw new ConfigError('WS_PATH', `must be a URL path starting with /, got "${wsPath}"`);
  }
  const ssePath = raw(env, 'SSE_PATH') ?? '/sse';
  if (!URL_PATH.test(ssePath) || ssePath === '/' || ssePath.endsWith('/')) {
    throw new ConfigError(
      'SSE_PATH',
      `must be a URL path starting with / and not ending with /, got "${ssePath}"`,
    );
  }
  if (ssePath === wsPath) {
    throw new ConfigError('SSE_PATH', `must differ from WS_PATH ("${wsPath}")`);
  }

  const heartbeatMs = int(env, 'WS_HEARTBEAT_MS', 30_000, 100, 600_000);
  const drainMs = int(env, 'SHUTDOWN_DRAIN_MS', 5_000, 0, 600_000);
  const timeoutMs = int(env, 'SHUTDOWN_TIMEOUT_MS', 15_000, 0, 600_000);
  if (drainMs > timeoutMs) {
    throw new ConfigError(
      'SHUTDOWN_DRAIN_MS',
      `(${drainMs}) must not exceed SHUTDOWN_TIMEOUT_MS (${timeoutMs})`,
    );
  }

  const certFile = readableFile(env, 'TLS_CERT_FILE');
  const keyFile = readableFile(env, 'TLS_KEY_FILE');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(
      certFile === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE',
      'must be set together with ' + (certFile === undefined ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'),
    );
  }

  const logLevel = raw(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      'LOG_LEVEL',
      `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`,
    );
  }

  const redisPrefix = raw(env, 'REDIS_PREFIX') ?? 'sb:';
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(redisPrefix)) {
    throw new ConfigError(
      'REDIS_PREFIX',
      'must be 1-64 characters of letters, digits, ":", "_", "." or "-"',
    );
  }

  const redisMode = raw(env, 'REDIS_MODE') ?? 'single';
  if (redisMode !== 'single' && redisMode !== 'cluster') {
    throw new ConfigError('REDIS_MODE', `must be single or cluster, got "${redisMode}"`);
  }
  if (redisMode === 'single' && raw(env, 'REDIS_URL')?.includes(',')) {
    throw new ConfigError(
      'REDIS_URL',
      'lists several nodes: set REDIS_MODE=cluster for Redis Cluster',
    );
  }
  const redisUrl =
    redisMode === 'cluster' ? seeds(env, 'REDIS_URL') : url(env, 'REDIS_URL', REDIS_PROTOCOLS);
  if (redisMode === 'cluster' && redisUrl === undefined) {
    throw new ConfigError('REDIS_MODE', 'is cluster, so REDIS_URL must list the seed nodes');
  }

  const trustProxy = bool(env, 'TRUST_PROXY', false);
  const maxConnectionsPerIp = int(env, 'MAX_CONNECTIONS_PER_IP', 100, 1, 10_000_000);
  // Each client connecting holds up to two: its ticket request and its upgrade. Behind a proxy
  // every connection comes from the proxy's address, so by default there is no bound there.
  const maxUnauthenticatedPerIp = int(
    env,
    'MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP',
    trustProxy ? 0 : 2 * maxConnectionsPerIp,
    0,
    10_000_000,
  );

  const metricsToken = raw(env, 'METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters long');
  }
  const metricsPublic = bool(env, 'METRICS_PUBLIC', false);
  if (metricsPublic && metricsToken !== undefined) {
    throw new ConfigError('METRICS_PUBLIC', 'cannot be true while METRICS_TOKEN is set');
  }
  if (production && metricsToken === undefined && !metricsPublic) {
    throw new ConfigError(
      'METRICS_TOKEN',
      'is required in production (or METRICS_PUBLIC=true to serve /metrics to anyone who reaches it)',
    );
  }

  const messagesPerWindow = int(env, 'WS_MESSAGES_PER_WINDOW', 20, 1, 1_000_000);
  const sentryDsn = url(env, 'SENTRY_DSN', ['https:', 'http:']);
  const authCookie = cookieName(env, 'AUTH_COOKIE');
  if (authCookie === ANONYMOUS_COOKIE) {
    throw new ConfigError(
      'AUTH_COOKIE',
      `must not be ${ANONYMOUS_COOKIE} (the anonymous visitors' cookie)`,
    );
  }

  const config = new AppConfig();
  Object.assign<AppConfig, AppConfig>(config, {
    nodeEnv,
    production,
    port,
    host: raw(env, 'HOST') ?? '0.0.0.0',
    redisUrl,
    redisMode,
    redisPrefix,
    jwt: {
      key,
      issuer: raw(env, 'JWT_ISSUER'),
      audience: raw(env, 'JWT_AUDIENCE'),
      clockToleranceS: int(env, 'JWT_CLOCK_TOLERANCE_S', 30, 0, 600),
    },
    devAuth,
    authCookie,
    anonymous: anonymous(env, key, messagesPerWindow),
    sentryDsn,
    demo: bool(env, 'DEMO', false),
    // Development: the page as this server serves it, by every loopback spelling (the log names
    // 127.0.0.1, a browser bar often says localhost).
    allowedOrigins:
      allowedOrigins ??
      new Set([`http://localhost:${port}`, `http://127.0.0.1:${port}`, `http://[::1]:${port}`]),
    ticketTtlS: int(env, 'TICKET_TTL_S', 30, 1, 600),
    presence: {
      batchMs: int(env, 'PRESENCE_BATCH_MS', 250, 10, 10_000),
      diffMaxMembers: int(env, 'PRESENCE_DIFF_MAX_MEMBERS', 5_000, 0, 10_000_000),
    },
    history: {
      size: int(env, 'HISTORY_SIZE', 100, 0, 10_000),
      ttlMs: int(env, 'HISTORY_TTL_S', 600, 1, 30 * 86_400) * 1000,
    },
    ws: {
      path: wsPath,
      ssePath,
      maxPayloadBytes: int(env, 'WS_MAX_PAYLOAD_BYTES', 10_240, 64, 16 * 1024 * 1024),
      heartbeatMs,
      sessionRevalidateMs: int(env, 'SESSION_REVALIDATE_MS', 900_000, 100, 86_400_000),
      messagesPerWindow,
      messageWindowMs: int(env, 'WS_MESSAGE_WINDOW_MS', 10_000, 10, 3_600_000),
      sendBufferMaxBytes: int(env, 'WS_SEND_BUFFER_MAX_BYTES', 1_048_576, 1024, 1024 * 1024 * 1024),
    },
    limits: {
      maxConnections: int(env, 'MAX_CONNECTIONS', 20_000, 1, 10_000_000),
      maxConnectionsPerUser: int(env, 'MAX_CONNECTIONS_PER_USER', 1, 1, 10_000),
      maxConnectionsPerIp,
      connectAttemptsPerMinute: int(env, 'CONNECT_ATTEMPTS_PER_MINUTE', 5, 1, 1_000_000),
      ticketsPerMinute: int(env, 'TICKETS_PER_MINUTE', 30, 1, 1_000_000),
      broadcastApiCallsPerSecond: BROADCAST_API_CALLS_PER_SECOND,
      maxHandshakesInProgress: MAX_HANDSHAKES_IN_PROGRESS,
      maxUnauthenticatedPerIp,
    },
    trustProxy,
    handshakeTimeoutMs: int(env, 'HANDSHAKE_TIMEOUT_MS', 5_000, 100, 600_000),
    tls: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
    admission: { maxWaitMs: int(env, 'ADMISSION_MAX_WAIT_MS', 2_000, 10, 600_000) },
    shutdown: {
      drainMs,
      timeoutMs,
      reconnectSpreadMs: int(env, 'RECONNECT_SPREAD_MS', 10_000, 0, 600_000),
    },
    connectionSpikePer10s: int(env, 'CONNECTION_SPIKE_PER_10S', 1000, 1, 100_000_000),
    metricsToken,
    broadcastApiKey: secret(env, 'BROADCAST_API_KEY'),
    adminToken: secret(env, 'ADMIN_TOKEN'),
    logLevel: logLevel as LevelWithSilent,
    timings: { ...DEFAULT_TIMINGS },
  });
  return config;
}
