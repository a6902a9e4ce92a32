import type { LevelWithSilent } from 'pino';

export type JwtKeySource =
  | { kind: 'secret'; secret: string; generated: boolean }
  | { kind: 'public-key'; pem: string }
  | { kind: 'jwks'; url: string };

/** The validated configuration, built once at boot from the environment (see config.schema.ts). */
export class AppConfig {
  nodeEnv!: string;
  production!: boolean;
  port!: number;
  host!: string;
  redisUrl!: string | undefined;
  redisPrefix!: string;
  jwt!: {
    key: JwtKeySource;
    issuer: string | undefined;
    audience: string | undefined;
    clockToleranceS: number;
  };
  devAuth!: boolean;
  demo!: boolean;
  allowedOrigins!: ReadonlySet<string>;
  ticketTtlS!: number;
  ws!: {
    path: string;
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
  };
  trustProxy!: boolean;
  tls!: { certFile: string; keyFile: string } | undefined;
  shutdown!: { drainMs: number; timeoutMs: number };
  connectionSpikePer10s!: number;
  metricsToken!: string | undefined;
  broadcastApiKey!: string | undefined;
  logLevel!: LevelWithSilent;
}
