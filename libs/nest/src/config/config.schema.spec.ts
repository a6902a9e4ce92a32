import { generateKeyPairSync } from 'node:crypto';
import { ConfigError } from './config.error';
import { loadConfig } from './config.schema';

const SECRET = 's'.repeat(32);
const PROD = {
  NODE_ENV: 'production',
  JWT_SECRET: SECRET,
  ALLOWED_ORIGINS: 'https://app.example.com',
  METRICS_TOKEN: 'm'.repeat(16),
};

function problem(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      return error;
    }
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('has the documented defaults in development', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      redisUrl: undefined,
      redisPrefix: 'sb:',
      devAuth: true,
      ticketTtlS: 30,
      ws: {
        path: '/ws',
        maxPayloadBytes: 10240,
        heartbeatMs: 30000,
        sessionRevalidateMs: 900000,
        messagesPerWindow: 20,
        messageWindowMs: 10000,
        sendBufferMaxBytes: 1048576,
      },
      limits: {
        maxConnections: 20000,
        maxConnectionsPerUser: 1,
        maxConnectionsPerIp: 100,
        connectAttemptsPerMinute: 5,
        ticketsPerMinute: 30,
      },
      trustProxy: false,
      shutdown: { drainMs: 5000, timeoutMs: 15000 },
      connectionSpikePer10s: 1000,
      logLevel: 'info',
    });
    expect(config.jwt.clockToleranceS).toBe(30);
    expect(config.jwt.key).toMatchObject({ kind: 'secret', generated: true });
    expect([...config.allowedOrigins]).toEqual([
      'http://localhost:3000',
      'http://127.0.0.1:3000',
      'http://[::1]:3000',
    ]);
  });

  it('follows PORT in the default origin and parses lists', () => {
    expect([...loadConfig({ PORT: '8080' }).allowedOrigins]).toContain('http://127.0.0.1:8080');
    const config = loadConfig({ ALLOWED_ORIGINS: 'https://a.example.com, http://localhost:5173' });
    expect([...config.allowedOrigins]).toEqual(['https://a.example.com', 'http://localhost:5173']);
  });

  it('takes REDIS_URL as a list of seed nodes in REDIS_MODE=cluster', () => {
    const config = loadConfig({
      REDIS_MODE: 'cluster',
      REDIS_URL: 'redis://10.0.0.1:7000, redis://10.0.0.2:7000',
    });
    expect(config.redisMode).toBe('cluster');
    expect(config.redisUrl).toBe('redis://10.0.0.1:7000,redis://10.0.0.2:7000');
    expect(loadConfig({}).redisMode).toBe('single');
  });

  it('starts in production with a key and origins, without dev auth', () => {
    const config = loadConfig(PROD);
    expect(config.production).toBe(true);
    expect(config.devAuth).toBe(false);
  });

  it('serves /metrics without a token in production only when told to', () => {
    const { METRICS_TOKEN: _, ...noToken } = PROD;
    expect(problem(noToken).message).toMatch(/required in production.*METRICS_PUBLIC=true/);
    expect(loadConfig({ ...noToken, METRICS_PUBLIC: 'true' }).metricsToken).toBeUndefined();
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT', 'whole number'],
    [{ PORT: '70000' }, 'PORT', 'between 0 and 65535'],
    [{ MAX_CONNECTIONS: '0' }, 'MAX_CONNECTIONS', 'between'],
    [{ WS_HEARTBEAT_MS: '1.5' }, 'WS_HEARTBEAT_MS', 'whole number'],
    [{ TRUST_PROXY: 'yes' }, 'TRUST_PROXY', 'true or false'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET', 'at least 32'],
    [{ BROADCAST_API_KEY: 'short' }, 'BROADCAST_API_KEY', 'at least 32'],
    [{ REDIS_URL: 'http://localhost' }, 'REDIS_URL', 'redis://'],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL', 'must be a URL'],
    [{ REDIS_URL: 'redis://a:1,redis://b:2' }, 'REDIS_URL', 'REDIS_MODE=cluster'],
    [{ REDIS_MODE: 'sentinel' }, 'REDIS_MODE', 'single or cluster'],
    [{ REDIS_MODE: 'cluster' }, 'REDIS_MODE', 'REDIS_URL'],
    [{ REDIS_MODE: 'cluster', REDIS_URL: 'redis://a:1,http://b:2' }, 'REDIS_URL', 'seed'],
    [{ REDIS_MODE: 'cluster', REDIS_URL: 'redis://a:1,rediss://b:2' }, 'REDIS_URL', 'mixes'],
    [{ ALLOWED_ORIGINS: 'https://a.example.com/path' }, 'ALLOWED_ORIGINS', 'exact origins'],
    [{ ALLOWED_ORIGINS: '*' }, 'ALLOWED_ORIGINS', 'exact origins'],
    [{ WS_PATH: 'ws' }, 'WS_PATH', 'starting with /'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', 'one of'],
    [{ JWT_PUBLIC_KEY: 'not a pem' }, 'JWT_PUBLIC_KEY', 'PEM'],
    [{ JWT_JWKS_URL: 'ftp://idp' }, 'JWT_JWKS_URL', 'https://'],
    [
      { JWT_SECRET: SECRET, JWT_JWKS_URL: 'https://idp.example.com/jwks' },
      'JWT_JWKS_URL',
      'JWT_SECRET',
    ],
    [{ TLS_CERT_FILE: '/nonexistent/cert.pem' }, 'TLS_CERT_FILE', 'cannot be read'],
    [{ SHUTDOWN_DRAIN_MS: '20000' }, 'SHUTDOWN_DRAIN_MS', 'SHUTDOWN_TIMEOUT_MS'],
    [{ REDIS_PREFIX: 'has space' }, 'REDIS_PREFIX', 'characters'],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN', 'at least 16'],
    [{ HANDSHAKE_TIMEOUT_MS: '50' }, 'HANDSHAKE_TIMEOUT_MS', 'between 100'],
    [{ HANDSHAKE_TIMEOUT_MS: '5s' }, 'HANDSHAKE_TIMEOUT_MS', 'whole number'],
    [
      { MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP: '-1' },
      'MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP',
      'between 0',
    ],
  ])('refuses %j naming %s', (env, variable, words) => {
    const error = problem(env);
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(variable)).toBe(true);
    expect(error.message).toContain(words);
  });

  it('bounds slow clients: HANDSHAKE_TIMEOUT_MS, and a bound per address unless behind a proxy', () => {
    const direct = loadConfig({});
    expect(direct.handshakeTimeoutMs).toBe(5000);
    expect(direct.limits.maxUnauthenticatedPerIp).toBe(200);
    expect(loadConfig({ MAX_CONNECTIONS_PER_IP: '10' }).limits.maxUnauthenticatedPerIp).toBe(20);
    // Behind a proxy every connection comes from the proxy: no bound unless one is asked for.
    expect(loadConfig({ TRUST_PROXY: 'true' }).limits.maxUnauthenticatedPerIp).toBe(0);
    const set = loadConfig({
      TRUST_PROXY: 'true',
      HANDSHAKE_TIMEOUT_MS: '500',
      MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP: '1000',
    });
    expect(set.handshakeTimeoutMs).toBe(500);
    expect(set.limits.maxUnauthenticatedPerIp).toBe(1000);
    expect(loadConfig({ MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP: '0' }).limits).toMatchObject({
      maxUnauthenticatedPerIp: 0,
    });
  });

  it.each([
    [{ ...PROD, JWT_SECRET: '' }, 'JWT_SECRET'],
    [{ ...PROD, DEV_AUTH: 'true' }, 'DEV_AUTH'],
    [{ ...PROD, ALLOWED_ORIGINS: '' }, 'ALLOWED_ORIGINS'],
    [{ ...PROD, ALLOWED_ORIGINS: ' , ' }, 'ALLOWED_ORIGINS'],
    [{ ...PROD, METRICS_TOKEN: '' }, 'METRICS_TOKEN'],
    [{ ...PROD, METRICS_PUBLIC: 'true' }, 'METRICS_PUBLIC'],
  ])('refuses the unsafe production setting %j', (env, variable) => {
    expect(problem(env).variable).toBe(variable);
  });

  it('refuses dev tokens when tokens are verified with a public key', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    expect(loadConfig({ JWT_PUBLIC_KEY: pem }).devAuth).toBe(false);
    expect(problem({ JWT_PUBLIC_KEY: pem, DEV_AUTH: 'true' }).message).toContain('JWT_PUBLIC_KEY');
    // A PEM on one line with \n escapes, as env files carry it.
    expect(loadConfig({ JWT_PUBLIC_KEY: pem.replace(/\n/g, '\\n') }).jwt.key.kind).toBe(
      'public-key',
    );
  });
});
