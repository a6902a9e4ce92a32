import { CloseCode } from '@switchboard/protocol';
import Redis from 'ioredis';
import { hsToken } from '../support/jwt';
import { suiteRedis, testPrefix } from '../support/redis';
import { spawnServer } from '../support/server-process';
import { type Closed, TestClient, within } from '../support/ws-client';

const SECRET = 'shutdown-test-secret-that-is-long-enough-012345';
const CLIENTS = 200;
const DRAIN_MS = 2000;
const TIMEOUT_MS = 6000;

/** SIGTERM on the built server (docs/operations.md, Graceful shutdown), with 200 real clients. */
describe('graceful shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s drains: 1001 spread over the window, 503 for newcomers, exit 0',
    async (signal) => {
      const server = await spawnServer({
        JWT_SECRET: SECRET,
        SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
        SHUTDOWN_TIMEOUT_MS: String(TIMEOUT_MS),
        MAX_CONNECTIONS_PER_IP: '1000',
        LOG_LEVEL: 'info',
      });
      const closes: Array<Closed & { at: number }> = [];
      const clients: TestClient[] = [];
      try {
        for (let batch = 0; batch < CLIENTS; batch += 50) {
          const opened = await Promise.all(
            Array.from({ length: 50 }, async (_, i) => {
              const token = await hsToken({ sub: `drain-${signal}-${batch + i}` }, SECRET);
              const client = new TestClient(server.ws, {
                headers: { authorization: `Bearer ${token}` },
              });
              await within(client.nextOfType('welcome'), 'welcome');
              void client.closed.then((closed) => closes.push({ ...closed, at: Date.now() }));
              return client;
            }),
          );
          clients.push(...opened);
        }
        const signalledAt = Date.now();
        server.child.kill(signal);

        // During the drain: not ready, still live, and new upgrades are refused with 503.
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect((await fetch(`${server.http}/health/ready`)).status).toBe(503);
        expect((await fetch(`${server.http}/health/live`)).status).toBe(200);
        const latecomer = new TestClient(server.ws, {
          headers: { authorization: `Bearer ${await hsToken({ sub: 'late' }, SECRET)}` },
        });
        const refusal = await within(latecomer.refused, 'refusal');
        expect(refusal.status).toBe(503);
        expect(Number(refusal.headers['retry-after'])).toBeGreaterThan(0);

        const exit = await within(server.exited, 'exit', TIMEOUT_MS + 2000);
        expect(exit).toEqual({ code: 0, signal: null });
        expect(Date.now() - signalledAt).toBeLessThan(TIMEOUT_MS);

        await within(Promise.all(clients.map((client) => client.closed)), 'all closes');
        expect(closes).toHaveLength(CLIENTS);
        expect(closes.every((closed) => closed.code === CloseCode.GoingAway)).toBe(true);
        const offsets = closes.map((closed) => closed.at - signalledAt).sort((x, y) => x - y);
        expect(offsets.filter((ms) => ms < 100).length).toBeLessThan(CLIENTS * 0.1);
        expect(offsets[offsets.length - 1] - offsets[0]).toBeGreaterThan(DRAIN_MS * 0.7);
        expect(offsets[offsets.length - 1]).toBeLessThan(DRAIN_MS + 1000);
        expect(server.lines.some((line) => line.includes('"msg":"shut down"'))).toBe(true);
      } finally {
        clients.forEach((client) => client.close());
        await server.stop('SIGKILL');
      }
    },
    30_000,
  );
});

/** A clean shutdown in cluster mode leaves nothing in Redis for another instance to purge. */
describe('graceful shutdown in cluster mode', () => {
  it('removes its presence, registry entries and indexes, and gives its lease up', async () => {
    const redis = await suiteRedis();
    const prefix = testPrefix();
    const client = new Redis(redis.url);
    const server = await spawnServer({
      JWT_SECRET: SECRET,
      REDIS_URL: redis.url,
      REDIS_PREFIX: prefix,
      SHUTDOWN_DRAIN_MS: '500',
      SHUTDOWN_TIMEOUT_MS: '3000',
    });
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const token = await hsToken({ sub: `leaving-${i}` }, SECRET);
        const opened = new TestClient(server.ws, { headers: { authorization: `Bearer ${token}` } });
        await within(opened.nextOfType('welcome'), 'welcome');
        for (const room of ['shared', `own-${i}`]) {
          opened.send({ type: 'room.join', data: { room } });
          await opened.nextOfType('room.joined');
        }
        clients.push(opened);
      }
      const keys = async (): Promise<string[]> => (await client.keys(`${prefix}*`)).sort();
      // Per room, its members and their order (21 rooms).
      expect((await keys()).filter((key) => key.includes('presence:'))).toHaveLength(42);

      server.child.kill('SIGTERM');
      expect(await within(server.exited, 'exit', 6000)).toEqual({ code: 0, signal: null });
      // Left: the rate-limit windows and the streams' positions, shared state that outlives any
      // instance and expires by itself. Nothing else.
      const left = await keys();
      const streams = left.filter((key) => key.startsWith(`${prefix}stream:`));
      for (const key of streams) {
        expect(await client.pttl(key)).toBeGreaterThan(0);
      }
      expect(
        left.filter((key) => !key.startsWith(`${prefix}rl:`) && !streams.includes(key)),
      ).toEqual([]);
    } finally {
      clients.forEach((opened) => opened.close());
      client.disconnect();
      await server.stop('SIGKILL');
      await redis.stop();
    }
  }, 30_000);
});
