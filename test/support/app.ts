import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import type { DevTokenResponse, TicketResponse } from '@switchboard/protocol';
import { createApp } from '../../src/app.factory';
import type { AppConfig, Timings } from '../../src/config/app-config';
import { Clock } from '../../src/config/clock';
import { loadConfig } from '../../src/config/config.schema';
import { createLogger } from '../../src/logging/logger';
import type { RealtimeOptions } from '../../src/realtime/realtime.module';
import { InstanceLease } from '../../src/redis/instance-lease';

export { waitUntil } from './wait';
import { waitUntil } from './wait';

export const TEST_ORIGIN = 'http://app.test';
export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';

/**
 * The system clock plus an offset a test moves forward: the app's tokens, sessions and in-memory
 * tickets age at once, while its timers keep running in real time.
 */
export class SkewedClock extends Clock {
  private offsetMs = 0;

  override now(): number {
    return Date.now() + this.offsetMs;
  }

  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/** Every line the app logged, raw, for assertions on what must never be logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
  parsed(): Array<Record<string, unknown>> {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  port: number;
  /** http://127.0.0.1:port */
  http: string;
  /** ws://127.0.0.1:port/ws */
  ws: string;
  logs: LogCapture;
  devToken(userId: string, extra?: { name?: string; ttl?: number }): Promise<string>;
  ticket(token: string): Promise<TicketResponse>;
  close(): Promise<void>;
}

/** Boots the real application on 127.0.0.1 (port 0 unless given), with test defaults plus `env`. */
export async function startApp(
  env: Record<string, string> = {},
  {
    waitForRedis = true,
    realtime = {},
    port: listenPort = 0,
    timings = {},
    limits = {},
    clock,
  }: {
    waitForRedis?: boolean;
    realtime?: RealtimeOptions;
    port?: number;
    /** Shorter internal clocks for this app (see `Timings`). */
    timings?: Partial<Timings>;
    /** Limits the environment cannot set (see `AppConfig.limits`). */
    limits?: Partial<AppConfig['limits']>;
    /** The app's clock (a `SkewedClock` to age tokens and tickets without sleeping). */
    clock?: Clock;
  } = {},
): Promise<TestApp> {
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: TEST_SECRET,
    ALLOWED_ORIGINS: TEST_ORIGIN,
    LOG_LEVEL: 'debug',
    ...env,
  });
  Object.assign(config.timings, timings);
  Object.assign(config.limits, limits);
  const logs = new LogCapture();
  const app = await createApp(config, createLogger(config.logLevel, logs), { ...realtime, clock });
  await app.listen(listenPort, '127.0.0.1');
  if (config.redisUrl && waitForRedis) {
    await waitUntil(() => app.get(InstanceLease).synced, 'Redis ready and the lease held');
  }
  const { port } = app.getHttpServer().address() as AddressInfo;
  const scheme = config.tls ? 'https' : 'http';
  const http = `${scheme}://127.0.0.1:${port}`;
  const ws = `${config.tls ? 'wss' : 'ws'}://127.0.0.1:${port}${config.ws.path}`;

  return {
    app,
    config,
    port,
    http,
    ws,
    logs,
    async devToken(userId, extra = {}) {
      const response = await fetch(`${http}/auth/dev-token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId, ...extra }),
      });
      if (response.status !== 200) {
        throw new Error(`dev-token answered ${response.status}: ${await response.text()}`);
      }
      return ((await response.json()) as DevTokenResponse).accessToken;
    },
    async ticket(token) {
      const response = await fetch(`${http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      if (response.status !== 201) {
        throw new Error(`ws-ticket answered ${response.status}: ${await response.text()}`);
      }
      return (await response.json()) as TicketResponse;
    },
    close: () => app.close(),
  };
}
