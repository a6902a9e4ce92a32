import { type AppConfig } from './app-config';
import { ConfigError } from './config.error';
import { type Env, loadConfig } from './config.schema';

/**
 * Every setting of docs/configuration.md, named in camelCase: `MAX_CONNECTIONS_PER_USER` is
 * `maxConnectionsPerUser`. Each is optional and has the same default and the same check as its
 * variable. `port`, `host` and the TLS files belong to the standalone server: a host application
 * listens on its own HTTP server, and the library ignores them.
 */
export interface SwitchboardSettings {
  nodeEnv?: 'development' | 'production' | 'test' | (string & {});
  port?: number;
  host?: string;
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  jwtSecret?: string;
  jwtPublicKey?: string;
  jwtJwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  jwtClockToleranceS?: number;
  devAuth?: boolean;
  authCookie?: string;
  anonymous?: boolean;
  anonymousTtlS?: number;
  /** Room globs; a comma-separated string is read as a list. */
  anonymousRooms?: readonly string[] | string;
  anonymousMessagesPerWindow?: number;
  anonymousSecret?: string;
  sentryDsn?: string;
  demo?: boolean;
  /** Exact origins (`https://app.example.com`); a comma-separated string is read as a list. */
  allowedOrigins?: readonly string[] | string;
  trustProxy?: boolean;
  wsPath?: string;
  ssePath?: string;
  wsHeartbeatMs?: number;
  wsMaxPayloadBytes?: number;
  wsMessagesPerWindow?: number;
  wsMessageWindowMs?: number;
  wsSendBufferMaxBytes?: number;
  ticketTtlS?: number;
  ticketsPerMinute?: number;
  connectAttemptsPerMinute?: number;
  connectionSpikePer10s?: number;
  maxConnections?: number;
  maxConnectionsPerIp?: number;
  maxConnectionsPerUser?: number;
  handshakeTimeoutMs?: number;
  admissionMaxWaitMs?: number;
  reconnectSpreadMs?: number;
  sessionRevalidateMs?: number;
  shutdownDrainMs?: number;
  shutdownTimeoutMs?: number;
  /** One URL, or (with `redisMode: 'cluster'`) the seed nodes as a list or a comma-separated string. */
  redisUrl?: readonly string[] | string;
  redisMode?: 'single' | 'cluster';
  redisPrefix?: string;
  historySize?: number;
  historyTtlS?: number;
  presenceBatchMs?: number;
  presenceDiffMaxMembers?: number;
  broadcastApiKey?: string;
  adminToken?: string;
  metricsToken?: string;
  metricsPublic?: boolean;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** Each setting's environment variable. */
const VARIABLES: { readonly [K in keyof Required<SwitchboardSettings>]: string } = {
  nodeEnv: 'NODE_ENV',
  port: 'PORT',
  host: 'HOST',
  logLevel: 'LOG_LEVEL',
  jwtSecret: 'JWT_SECRET',
  jwtPublicKey: 'JWT_PUBLIC_KEY',
  jwtJwksUrl: 'JWT_JWKS_URL',
  jwtIssuer: 'JWT_ISSUER',
  jwtAudience: 'JWT_AUDIENCE',
  jwtClockToleranceS: 'JWT_CLOCK_TOLERANCE_S',
  devAuth: 'DEV_AUTH',
  authCookie: 'AUTH_COOKIE',
  anonymous: 'ANONYMOUS',
  anonymousTtlS: 'ANONYMOUS_TTL_S',
  anonymousRooms: 'ANONYMOUS_ROOMS',
  anonymousMessagesPerWindow: 'ANONYMOUS_MESSAGES_PER_WINDOW',
  anonymousSecret: 'ANONYMOUS_SECRET',
  sentryDsn: 'SENTRY_DSN',
  demo: 'DEMO',
  allowedOrigins: 'ALLOWED_ORIGINS',
  trustProxy: 'TRUST_PROXY',
  wsPath: 'WS_PATH',
  ssePath: 'SSE_PATH',
  wsHeartbeatMs: 'WS_HEARTBEAT_MS',
  wsMaxPayloadBytes: 'WS_MAX_PAYLOAD_BYTES',
  wsMessagesPerWindow: 'WS_MESSAGES_PER_WINDOW',
  wsMessageWindowMs: 'WS_MESSAGE_WINDOW_MS',
  wsSendBufferMaxBytes: 'WS_SEND_BUFFER_MAX_BYTES',
  ticketTtlS: 'TICKET_TTL_S',
  ticketsPerMinute: 'TICKETS_PER_MINUTE',
  connectAttemptsPerMinute: 'CONNECT_ATTEMPTS_PER_MINUTE',
  connectionSpikePer10s: 'CONNECTION_SPIKE_PER_10S',
  maxConnections: 'MAX_CONNECTIONS',
  maxConnectionsPerIp: 'MAX_CONNECTIONS_PER_IP',
  maxConnectionsPerUser: 'MAX_CONNECTIONS_PER_USER',
  handshakeTimeoutMs: 'HANDSHAKE_TIMEOUT_MS',
  admissionMaxWaitMs: 'ADMISSION_MAX_WAIT_MS',
  reconnectSpreadMs: 'RECONNECT_SPREAD_MS',
  sessionRevalidateMs: 'SESSION_REVALIDATE_MS',
  shutdownDrainMs: 'SHUTDOWN_DRAIN_MS',
  shutdownTimeoutMs: 'SHUTDOWN_TIMEOUT_MS',
  redisUrl: 'REDIS_URL',
  redisMode: 'REDIS_MODE',
  redisPrefix: 'REDIS_PREFIX',
  historySize: 'HISTORY_SIZE',
  historyTtlS: 'HISTORY_TTL_S',
  presenceBatchMs: 'PRESENCE_BATCH_MS',
  presenceDiffMaxMembers: 'PRESENCE_DIFF_MAX_MEMBERS',
  broadcastApiKey: 'BROADCAST_API_KEY',
  adminToken: 'ADMIN_TOKEN',
  metricsToken: 'METRICS_TOKEN',
  metricsPublic: 'METRICS_PUBLIC',
  tlsCertFile: 'TLS_CERT_FILE',
  tlsKeyFile: 'TLS_KEY_FILE',
};

const SETTINGS = Object.keys(VARIABLES) as Array<keyof SwitchboardSettings>;
const BY_VARIABLE = new Map(SETTINGS.map((setting) => [VARIABLES[setting], setting]));

/**
 * The settings an environment holds (`process.env` in the standalone server): each variable of
 * docs/configuration.md that is set, as its string, under its camelCase name. The values are
 * checked by `SwitchboardModule.forRoot`, as `loadConfig` checks the environment.
 */
export function switchboardOptionsFromEnv(env: Env): SwitchboardSettings {
  const settings: Record<string, string> = {};
  for (const setting of SETTINGS) {
    const value = env[VARIABLES[setting]];
    if (value !== undefined) {
      settings[setting] = value;
    }
  }
  return settings;
}

/**
 * Checks the settings as `loadConfig` checks the environment, with the same defaults.
 *
 * @throws ConfigError naming the first setting that is wrong, by its camelCase name; an unknown
 *   setting is an error too (a misspelt option must not fall back to its default silently).
 */
export function configFromSettings(settings: SwitchboardSettings): AppConfig {
  const env: Record<string, string> = {};
  for (const [setting, value] of Object.entries(settings) as Array<[string, unknown]>) {
    const variable = VARIABLES[setting as keyof SwitchboardSettings];
    if (variable === undefined) {
      throw new ConfigError(setting, 'is not a Switchboard option');
    }
    if (value === undefined || value === null) {
      continue;
    }
    if (Array.isArray(value)) {
      env[variable] = value.join(',');
    } else if (
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean'
    ) {
      env[variable] = String(value);
    } else {
      throw new ConfigError(setting, 'must be a string, a number, a boolean or a list of strings');
    }
  }
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) {
      throw error;
    }
    const setting = BY_VARIABLE.get(error.variable) ?? error.variable;
    const problem = error.message
      .slice(error.variable.length + 1)
      .replace(/\b[A-Z][A-Z0-9_]+\b/g, (name) => BY_VARIABLE.get(name) ?? name);
    throw new ConfigError(setting, problem);
  }
}
