import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import type { DevTokenResponse, TicketResponse } from '@switchboard/protocol';
import { createApp } from '../../src/app.factory';
import type { AppConfig, Timings } from '../../libs/nest/src/config/app-config';
import { Clock } from '../../libs/nest/src/config/clock';
import { loadConfig } from '../../libs/nest/src/config/config.schema';
import { createLogger } from '../../libs/nest/src/logging/logger';
import type { RealtimeOptions } from '../../libs/nest/src/realtime/realtime.module';
import { InstanceLease } from '../../libs/nest/src/redis/instance-lease';
import { TicketsService } from '../../libs/nest/src/tickets/tickets.service';
import { testPrefix } from './redis';

export { waitUntil } from './wait';
import { waitUntil } from './wait';
export { LogCapture } from './log-capture';
import { LogCapture } from './log-capture';

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

/** What `startApp` takes besides the environment. */
export interface StartOptions {
  waitForRedis?: boolean;
  realtime?: RealtimeOptions;
  port?: number;
  /** Shorter internal clocks for this app (see `Timings`). */
  timings?: Partial<Timings>;
  /** Limits the environment cannot set (see `AppConfig.limits`). */
  limits?: Partial<AppConfig['limits']>;
  /** The app's clock (a `SkewedClock` to age tokens and tickets without sleeping). */
  clock?: Clock;
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
  }: StartOptions = {},
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

/**
 * Two instances of one cluster, booted together: both with `env` (which names the Redis:
 * `REDIS_URL`, and `REDIS_MODE` for a Redis Cluster) and `options`, under one key prefix,
 * `env.REDIS_PREFIX` or else a fresh `testPrefix()`. Give the prefix when the test reads Redis or
 * boots a third instance on it. The caller closes both (in `afterAll`, as for `startApp`); when
 * one fails to boot, the other is closed before the error is thrown.
 */
export async function twoInstances(
  env: Record<string, string>,
  options: StartOptions = {},
): Promise<[TestApp, TestApp]> {
  if (!env.REDIS_URL) {
    throw new Error('twoInstances needs REDIS_URL: without Redis, two instances share nothing');
  }
  const shared = { ...env, REDIS_PREFIX: env.REDIS_PREFIX ?? testPrefix() };
  const [a, b] = await Promise.allSettled([startApp(shared, options), startApp(shared, options)]);
  if (a.status === 'fulfilled' && b.status === 'fulfilled') {
    return [a.value, b.value];
  }
  const started = [a, b].filter((result) => result.status === 'fulfilled');
  await Promise.all(started.map((result) => result.value.close()));
  throw (a.status === 'rejected' ? a : (b as PromiseRejectedResult)).reason;
}

/**
 * Holds the app's next ticket redemption, as a slow ticket store would, until `release`: the
 * handshake's checks wait meanwhile. `spy` tells when the redemption started (`mock.calls`) and
 * ends with it (`mock.results[0].value`); restore it when done.
 */
export function holdNextRedemption(app: TestApp) {
  const tickets = app.app.get(TicketsService);
  const redeem = tickets.redeem.bind(tickets);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const spy = jest.spyOn(tickets, 'redeem').mockImplementationOnce(async (ticket) => {
    await held;
    return redeem(ticket);
  });
  return { spy, release };
}
