import { DrainService } from '../../libs/nest/src/realtime/connections/drain.service';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { RedisServer, testPrefix } from '../support/redis';
import { connected } from '../support/ws-client';

async function probe(
  app: TestApp,
  which: 'live' | 'ready',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.http}/health/${which}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Liveness and readiness (docs/protocol.md, HTTP API) with Redis up, Redis stopped, and during a drain. */
describe('health probes', () => {
  let redis: RedisServer;
  let app: TestApp;
  beforeAll(async () => {
    redis = await RedisServer.start();
    app = await startApp({
      REDIS_URL: redis.url,
      REDIS_PREFIX: testPrefix(),
      METRICS_TOKEN: 'metrics-token-0123456789',
    });
  });
  afterAll(async () => {
    await app.close();
    await redis.stop();
  });

  it('is live and ready with Redis up, and says so in the terminus body', async () => {
    expect(await probe(app, 'live')).toEqual({
      status: 200,
      body: { status: 'ok', info: {}, error: {}, details: {} },
    });
    const ready = await probe(app, 'ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      details: { ws: { status: 'up', connections: 0, draining: false }, redis: { status: 'up' } },
    });
    const metrics = await fetch(`${app.http}/metrics`, {
      headers: { authorization: 'Bearer metrics-token-0123456789' },
    });
    const text = await metrics.text();
    expect(text).toMatch(/^redis_up\{mode="single"\} 1$/m);
    expect(text).toMatch(/^redis_subscribed_channels [1-9]\d*$/m); // all, ctl, its own channel
  });

  it('stays live but not ready while Redis is stopped, and recovers by itself', async () => {
    await redis.stop();
    try {
      await waitUntil(async () => (await probe(app, 'ready')).status === 503, 'readiness to fail');
      const ready = await probe(app, 'ready');
      expect(ready.body).toMatchObject({ status: 'error', error: { redis: { status: 'down' } } });
      expect((await probe(app, 'live')).status).toBe(200);
      const token = await app.devToken('health-outage');
      const refused = await fetch(`${app.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(refused.status).toBe(503);
      const text = await (
        await fetch(`${app.http}/metrics`, {
          headers: { authorization: 'Bearer metrics-token-0123456789' },
        })
      ).text();
      expect(text).toMatch(/^redis_up\{mode="single"\} 0$/m);
      expect(text).toMatch(/^redis_errors_total\{kind="connection"\} [1-9]\d*$/m);
    } finally {
      await redis.resume();
    }
    await waitUntil(
      async () => (await probe(app, 'ready')).status === 200,
      'readiness to return',
      5000,
    );
  });

  it('is not ready while draining, and reports the connections it holds', async () => {
    const draining = await startApp({
      REDIS_URL: redis.url,
      REDIS_PREFIX: testPrefix(),
      SHUTDOWN_DRAIN_MS: '300',
    });
    try {
      const client = await connected(
        (await draining.ticket(await draining.devToken('drained'))).url,
      );
      expect((await probe(draining, 'ready')).body).toMatchObject({
        details: { ws: { connections: 1 } },
      });
      const drained = draining.app.get(DrainService).drain(Date.now() + 2000);
      const ready = await probe(draining, 'ready');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ error: { ws: { status: 'down', draining: true } } });
      expect((await probe(draining, 'live')).status).toBe(200);
      await drained;
      expect((await client.closed).code).toBe(1001);
    } finally {
      await draining.close();
    }
  });
});

describe('health probes in embedded mode', () => {
  it('are ready without Redis and do not mention it', async () => {
    const app = await startApp();
    try {
      const ready = await probe(app, 'ready');
      expect(ready.status).toBe(200);
      expect(Object.keys(ready.body.details as object)).toEqual(['ws']);
    } finally {
      await app.close();
    }
  });
});
