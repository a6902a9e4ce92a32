// npm run bench [-- --quick] [-- --only connect,fanout,churn,recovery] [-- --reps 3]
//   [-- --clients N] [-- --profile DIR] (the recovery scenario's size; CPU profiles of Switchboard)
//   [-- --env HISTORY_SIZE=0] (extra configuration for Switchboard, repeatable)
// Starts its own redis-server, Switchboard instances from the build (node dist/main.js) and the
// raw `ws` baseline (bench/baseline-server.mjs), drives both with the same load from worker
// processes on loopback, alternating which goes first, and prints medians [min–max] over the
// repetitions with the ratio Switchboard / baseline. Every run is also written as JSON.
import { fork, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisCluster } from './redis-cluster.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
/** `--profile DIR`: every Switchboard instance writes a CPU profile there (stopped with SIGTERM). */
const profileDir = args.includes('--profile') ? args[args.indexOf('--profile') + 1] : null;
/** `--clients N`: the recovery scenario's size instead of the default. */
const clientsArg = args.includes('--clients') ? Number(args[args.indexOf('--clients') + 1]) : 0;
const reps = args.includes('--reps') ? Number(args[args.indexOf('--reps') + 1]) : 3;
/** `--env NAME=value` (repeatable): extra configuration for every Switchboard instance. */
const extraEnv = Object.fromEntries(
  args.flatMap((arg, i) => (arg === '--env' ? [args[i + 1].split(/=(.*)/s).slice(0, 2)] : [])),
);
const WORKERS = 4;
const SECRET = randomBytes(32).toString('base64url');
const API_KEY = randomBytes(32).toString('base64url');
const CLOCK_TICKS =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const SIZES = quick
  ? {
      connect: 500,
      hold: 1000,
      holdMs: 1000,
      heartbeatMs: 500,
      fanout: 500,
      broadcasts: 20,
      cross: 250,
      chatClients: 100,
      chatRooms: 5,
      chatMs: 2000,
      churnMs: 10000,
      recovery: 500,
      recoveryRate: 10,
      storm: 1000,
      echoClients: 100,
      echoMs: 3000,
    }
  : {
      connect: 10000,
      hold: 19000,
      holdMs: 60000,
      heartbeatMs: 30000,
      fanout: 5000,
      broadcasts: 200,
      cross: 2500,
      chatClients: 1000,
      chatRooms: 50,
      chatMs: 20000,
      churnMs: 180000,
      recovery: 5000,
      // 5,000 × 10/s would be 50,000 deliveries a second: past what fan-out alone reaches here
      // (about 45,000/s on 2 cores, see fanout), so the storm would measure a saturated server.
      recoveryRate: 2,
      storm: 19000,
      echoClients: 1000,
      echoMs: 20000,
    };

if (clientsArg > 0) {
  SIZES.recovery = clientsArg;
}

// ---------------------------------------------------------------------------------------------
// processes

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill('SIGKILL') };
}

/** Every server still running: killed when the benchmark exits, even when it fails. */
const servers = new Set();
process.once('exit', () => servers.forEach((child) => child.kill('SIGKILL')));

/** Waits until the server says it is ready (in cluster mode: Redis up and its lease held). */
async function ready(server) {
  const deadline = Date.now() + 15000;
  while ((await fetch(`${server.http}/health/ready`).catch(() => null))?.status !== 200) {
    if (Date.now() > deadline) {
      throw new Error(`${server.http} did not become ready`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts a server process and resolves when it printed its URL. */
async function startServer(kind, env, nodeArgs = []) {
  const port = await freePort();
  const script =
    kind === 'switchboard' ? join(root, 'dist', 'main.js') : join(here, 'baseline-server.mjs');
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  let inspector = null;
  child.stderr.on('data', (chunk) => {
    const text = chunk.toString();
    const match = /Debugger listening on (ws:\/\/\S+)/.exec(text);
    if (match) {
      inspector = match[1];
    } else if (!/For help, see|Debugger attached|Waiting for the debugger/.test(text)) {
      process.stderr.write(text);
    }
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 15000);
    child.stdout.on('data', function listening(chunk) {
      if (/"url":"http:\/\/127\.0\.0\.1:\d+"/.test(chunk.toString())) {
        clearTimeout(timer);
        child.stdout.off('data', listening);
        child.stdout.resume(); // keep draining the logs, without looking at them
        resolve();
      }
    });
  });
  return {
    pid: child.pid,
    http: `http://127.0.0.1:${port}`,
    inspector: () => inspector,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve(); // it exited already (a scenario sent it SIGTERM)
          return;
        }
        child.once('exit', resolve);
        if (nodeArgs.includes('--cpu-prof')) {
          // A profile is written on a clean exit: a graceful shutdown, killed if it hangs.
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 30000).unref();
        } else {
          child.kill('SIGKILL');
        }
      }),
  };
}

function switchboardEnv(extra = {}) {
  return {
    NODE_ENV: 'production',
    JWT_SECRET: SECRET,
    ALLOWED_ORIGINS: 'http://bench.invalid',
    BROADCAST_API_KEY: API_KEY,
    LOG_LEVEL: 'info',
    MAX_CONNECTIONS: '20000',
    MAX_CONNECTIONS_PER_IP: '20000',
    WS_HEARTBEAT_MS: String(SIZES.heartbeatMs),
    ...extraEnv,
    ...extra,
  };
}

async function startTarget(kind, extra = {}, nodeArgs = []) {
  const profile =
    kind === 'switchboard' && profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  return startServer(
    kind,
    kind === 'switchboard'
      ? switchboardEnv(extra)
      : { WS_HEARTBEAT_MS: String(SIZES.heartbeatMs), ...extra },
    [...profile, ...nodeArgs],
  );
}

/**
 * The heap of a server started with --inspect, after a full garbage collection, over the
 * inspector protocol: the product has no endpoint for it, and needs none.
 */
async function heapAfterGc(server) {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(server.inspector());
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let seq = 0;
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const id = ++seq;
      socket.on('message', function answer(raw) {
        const message = JSON.parse(raw.toString());
        if (message.id === id) {
          socket.off('message', answer);
          resolve(message.result);
        }
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call('HeapProfiler.collectGarbage');
  await call('HeapProfiler.collectGarbage');
  const { result } = await call('Runtime.evaluate', {
    expression: 'process.memoryUsage().heapUsed',
    returnByValue: true,
  });
  socket.close();
  return result.value;
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
function proc(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return { cpu, rss: rssKb * 1024 };
}

// ---------------------------------------------------------------------------------------------
// load workers

class Workers {
  constructor() {
    this.pending = new Map();
    this.seq = 0;
    this.children = Array.from({ length: WORKERS }, (_, i) => {
      const child = fork(join(here, 'worker.mjs'), [], {
        env: { ...process.env, LOCAL_ADDRESS: `127.0.0.${2 + i}`, JWT_SECRET: SECRET },
      });
      child.on('message', ({ id, result }) => {
        this.pending.get(id)?.(result);
        this.pending.delete(id);
      });
      return child;
    });
  }

  call(index, cmd, args = {}) {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.children[index].send({ id, cmd, args });
    });
  }

  all(cmd, args) {
    return Promise.all(
      this.children.map((_, i) => this.call(i, cmd, typeof args === 'function' ? args(i) : args)),
    );
  }

  /** Connects `count` clients spread over the workers; `http` may differ per worker. */
  async connect(count, http, extra = {}) {
    const share = Math.ceil(count / WORKERS);
    const started = performance.now();
    const results = await this.all('connect', (i) => ({
      http: typeof http === 'function' ? http(i) : http,
      count: Math.max(0, Math.min(share, count - i * share)),
      first: i * share,
      prefix: `u${randomBytes(3).toString('hex')}-`,
      concurrency: 64,
      timeoutMs: 20000,
      ...extra,
    }));
    return {
      ok: sum(results.map((r) => r.ok)),
      failed: sum(results.map((r) => r.failed)),
      latencies: results.flatMap((r) => r.latencies),
      ms: performance.now() - started,
    };
  }

  close() {
    return this.all('close');
  }

  stop() {
    this.children.forEach((child) => child.kill());
  }
}

// ---------------------------------------------------------------------------------------------
// statistics

const sum = (values) => values.reduce((total, value) => total + value, 0);
function percentile(values, p) {
  if (values.length === 0) {
    return NaN;
  }
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const median = (values) => percentile(values, 50);

async function publish(target, kind, room, t, pad) {
  const data = { t, pad };
  const response =
    kind === 'switchboard'
      ? await fetch(`${target.http}/api/broadcast`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ to: { room }, event: 'tick', data }),
        })
      : await fetch(`${target.http}/publish`, {
          method: 'POST',
          body: JSON.stringify({ room, event: 'tick', data }),
        });
  if (response.status !== 202) {
    throw new Error(`publish answered ${response.status}`);
  }
}

// ---------------------------------------------------------------------------------------------
// scenarios: each returns { figure: value } for one target

const scenarios = {
  async connect(kind, workers) {
    const target = await startTarget(kind);
    try {
      const before = proc(target.pid);
      const result = await workers.connect(SIZES.connect, target.http);
      const after = proc(target.pid);
      return {
        'connections/s': (result.ok / result.ms) * 1000,
        'server CPU ms/connection': ((after.cpu - before.cpu) / Math.max(1, result.ok)) * 1000,
        'connect p50 ms': median(result.latencies),
        'connect p99 ms': percentile(result.latencies, 99),
        failures: result.failed,
        'RSS KiB/connection': (after.rss - before.rss) / 1024 / Math.max(1, result.ok),
      };
    } finally {
      await workers.close();
      await target.stop();
    }
  },

  async hold(kind, workers) {
    // Both servers under the inspector, so that a full collection can run before each RSS sample.
    const target = await startTarget(kind, {}, ['--inspect=127.0.0.1:0']);
    try {
      await heapAfterGc(target);
      const before = proc(target.pid);
      const result = await workers.connect(SIZES.hold, target.http);
      await workers.all('hold');
      const start = proc(target.pid);
      await new Promise((resolve) => setTimeout(resolve, SIZES.holdMs));
      const end = proc(target.pid);
      const reports = await workers.all('report');
      await heapAfterGc(target);
      const collected = proc(target.pid);
      const perConnection = (rss) => (rss - before.rss) / 1024 / Math.max(1, result.ok);
      return {
        held: sum(reports.map((r) => r.open)),
        'connect failures': result.failed,
        drops: sum(reports.map((r) => r.drops)),
        'RSS KiB/connection': perConnection(end.rss),
        'RSS KiB/connection after GC': perConnection(collected.rss),
        'CPU ms/s while idle': ((end.cpu - start.cpu) / (SIZES.holdMs / 1000)) * 1000,
      };
    } finally {
      await workers.close();
      await target.stop();
    }
  },

  async fanout(kind, workers) {
    const target = await startTarget(kind);
    try {
      const result = await workers.connect(SIZES.fanout, target.http, { room: 'bench' });
      const delivery = await broadcastAndMeasure(workers, [target], target, kind, result.ok);
      return {
        'delivered/s': delivery.rate,
        lost: delivery.lost,
        'latency p50 ms': median(delivery.latencies),
        'latency p95 ms': percentile(delivery.latencies, 95),
        'latency p99 ms': percentile(delivery.latencies, 99),
        'CPU s/million delivered': delivery.cpuPerMillion,
      };
    } finally {
      await workers.close();
      await target.stop();
    }
  },

  async cross(kind, workers, redis) {
    const prefix = `bench${randomBytes(3).toString('hex')}:`;
    const extra =
      kind === 'switchboard'
        ? { REDIS_URL: redis.url, REDIS_PREFIX: prefix }
        : { REDIS_URL: redis.url };
    const [a, b] = await Promise.all([startTarget(kind, extra), startTarget(kind, extra)]);
    try {
      // Workers 0 and 1 hold clients on A, workers 2 and 3 on B; broadcasts are published on A.
      const result = await workers.connect(
        2 * SIZES.cross,
        (i) => (i < WORKERS / 2 ? a.http : b.http),
        { room: 'bench' },
      );
      const delivery = await broadcastAndMeasure(workers, [a, b], a, kind, result.ok);
      const side = (from, to) => delivery.perWorker.slice(from, to).flatMap((r) => r.latencies);
      return {
        'delivered/s': delivery.rate,
        lost: delivery.lost,
        'A (local) p50 ms': median(side(0, WORKERS / 2)),
        'A (local) p99 ms': percentile(side(0, WORKERS / 2), 99),
        'B (remote) p50 ms': median(side(WORKERS / 2, WORKERS)),
        'B (remote) p99 ms': percentile(side(WORKERS / 2, WORKERS), 99),
      };
    } finally {
      await workers.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  },

  /** 1,000 clients, each alone in its room, send 10 room.messages a second and get each back. */
  async echo(kind, workers) {
    const { latencies, errors, cpu } = await roomTraffic(kind, workers, {
      clients: SIZES.echoClients,
      rooms: SIZES.echoClients,
      rate: 10,
      durationMs: SIZES.echoMs,
      messagesPerWindow: 200,
    });
    return {
      'echoed/s': (latencies.length / SIZES.echoMs) * 1000,
      'round trip p50 ms': median(latencies),
      'round trip p99 ms': percentile(latencies, 99),
      'error frames': errors,
      'CPU s/million echoed': (cpu / Math.max(1, latencies.length)) * 1e6,
    };
  },

  async chat(kind, workers) {
    // 2 messages/s is exactly the default WS_MESSAGES_PER_WINDOW (20 per 10 s): with any jitter a
    // window would see 21 and drop one. The limiter still runs on every message at 40.
    const { delivered, latencies, errors, cpu } = await roomTraffic(kind, workers, {
      clients: SIZES.chatClients,
      rooms: SIZES.chatRooms,
      rate: 2,
      durationMs: SIZES.chatMs,
      messagesPerWindow: 40,
    });
    return {
      'messages sent/s': (latencies.length / SIZES.chatMs) * 1000,
      'delivered/s': (delivered / SIZES.chatMs) * 1000,
      'round trip p50 ms': median(latencies),
      'round trip p99 ms': percentile(latencies, 99),
      'error frames': errors,
      'CPU s/million delivered': (cpu / Math.max(1, delivered)) * 1e6,
    };
  },
};

/**
 * `clients` clients in `rooms` rooms each send `rate` room.messages a second for `durationMs`:
 * the messages delivered, the round trips of each client's own messages, the error frames, and
 * the server CPU seconds spent meanwhile. Switchboard's per-socket limit is raised to
 * `messagesPerWindow`, so that jitter never drops a message.
 */
async function roomTraffic(kind, workers, { clients, rooms, rate, durationMs, messagesPerWindow }) {
  const target = await startTarget(
    kind,
    kind === 'switchboard' ? { WS_MESSAGES_PER_WINDOW: String(messagesPerWindow) } : {},
  );
  try {
    await workers.connect(clients, target.http, { rooms });
    await workers.all('listen', { event: 'room.message' });
    const start = proc(target.pid);
    await workers.all('chat', { rate, durationMs });
    await new Promise((resolve) => setTimeout(resolve, 200)); // the last messages in flight
    const end = proc(target.pid);
    const reports = await workers.all('report');
    return {
      delivered: sum(reports.map((r) => r.received)),
      latencies: reports.flatMap((r) => r.latencies),
      errors: sum(reports.map((r) => r.errors)),
      cpu: end.cpu - start.cpu,
    };
  } finally {
    await workers.close();
    await target.stop();
  }
}

/**
 * Publishes `broadcasts` ~100-byte events on `publisher`, `concurrency` at a time: to room
 * "bench", or with `rooms`, to `room-<i % rooms>` in turn (each client is in one of them).
 */
async function broadcastAndMeasure(
  workers,
  servers,
  publisher,
  kind,
  clients,
  { rooms = 0, concurrency = 1, broadcasts = SIZES.broadcasts } = {},
) {
  await workers.all('listen', { event: 'tick' });
  const pad = 'x'.repeat(60);
  const cpuBefore = sum(servers.map((server) => proc(server.pid).cpu));
  const begin = performance.timeOrigin + performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < broadcasts) {
        const i = next++;
        const room = rooms > 0 ? `room-${i % rooms}` : 'bench';
        await publish(publisher, kind, room, performance.timeOrigin + performance.now(), pad);
      }
    }),
  );
  const expected = rooms > 0 ? (clients * broadcasts) / rooms : clients * broadcasts;
  const deadline = Date.now() + 30000;
  while (
    sum((await workers.all('count')).map((r) => r.received)) < expected &&
    Date.now() < deadline
  ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const cpuAfter = sum(servers.map((server) => proc(server.pid).cpu));
  const perWorker = await workers.all('report');
  const delivered = sum(perWorker.map((r) => r.received));
  const last = Math.max(...perWorker.map((r) => r.lastAt));
  return {
    rate: (delivered / (last - begin)) * 1000,
    lost: expected - delivered,
    latencies: perWorker.flatMap((r) => r.latencies),
    perWorker,
    cpuPerMillion: ((cpuAfter - cpuBefore) / Math.max(1, delivered)) * 1e6,
  };
}

// ---------------------------------------------------------------------------------------------
// storm: Switchboard alone (the baseline has no drain)

/**
 * Two instances on one Redis. SIZES.storm clients connect to A; A gets SIGTERM and drains over
 * SHUTDOWN_DRAIN_MS; every client fetches a ticket from B with the token it holds and reconnects
 * there, backing off on a refusal as the SDK does. Target: all back within 15 s of the SIGTERM,
 * no failure beyond retried 503/429.
 */
async function storm(workers, redis) {
  const extra = {
    REDIS_URL: redis.url,
    REDIS_PREFIX: `storm${randomBytes(3).toString('hex')}:`,
    SHUTDOWN_DRAIN_MS: '5000',
    SHUTDOWN_TIMEOUT_MS: '15000',
    MAX_CONNECTIONS: '25000',
  };
  const [a, b] = await Promise.all([
    startTarget('switchboard', extra),
    startTarget('switchboard', extra),
  ]);
  try {
    await Promise.all([a, b].map(ready));
    const share = Math.ceil(SIZES.storm / WORKERS);
    const connectStart = performance.now();
    const connected = await workers.all('stormConnect', (i) => ({
      http: a.http,
      fallback: b.http,
      count: Math.max(0, Math.min(share, SIZES.storm - i * share)),
      first: i * share,
      prefix: `s${randomBytes(3).toString('hex')}-`,
      concurrency: 64,
    }));
    const connectMs = performance.now() - connectStart;
    const held = SIZES.storm - sum(connected.map((r) => r.failed));
    const cpuBefore = proc(b.pid).cpu;
    const signalledAt = performance.timeOrigin + performance.now();
    process.kill(a.pid, 'SIGTERM');
    let status = [];
    const deadline = Date.now() + 120000;
    do {
      await new Promise((resolve) => setTimeout(resolve, 250));
      status = await workers.all('stormStatus');
    } while (sum(status.map((r) => r.back + r.failed)) < held && Date.now() < deadline);
    const refusals = {};
    for (const r of status) {
      for (const [reason, n] of Object.entries(r.refusals)) {
        refusals[reason] = (refusals[reason] ?? 0) + n;
      }
    }
    const figures = {
      clients: SIZES.storm,
      'connected to A': held,
      'first connect took s': connectMs / 1000,
      'back on B': sum(status.map((r) => r.back)),
      'gave up': sum(status.map((r) => r.failed)),
      'all back after s (from SIGTERM)':
        (Math.max(...status.map((r) => r.lastBackAt)) - signalledAt) / 1000,
      'B CPU ms per reconnect':
        ((proc(b.pid).cpu - cpuBefore) * 1000) / Math.max(1, sum(status.map((r) => r.back))),
    };
    console.log(`\n### storm (${SIZES.storm} clients drained from A to B, one Redis)\n`);
    console.log('| figure | value |');
    console.log('| --- | ---: |');
    for (const [figure, value] of Object.entries(figures)) {
      console.log(`| ${figure} | ${format(value)} |`);
    }
    console.log(`\nrefusals and retries: ${JSON.stringify(refusals)}`);
    const met = figures['back on B'] === held && figures['all back after s (from SIGTERM)'] <= 15;
    console.log(`${met ? 'PASS' : 'FAIL'}: all back within 15 s of the SIGTERM`);
    return { figures, refusals, met };
  } finally {
    await workers.all('stormClose');
    await Promise.all([a.stop(), b.stop()]);
  }
}

// ---------------------------------------------------------------------------------------------
// shards: Switchboard alone, on one Redis and on a Redis Cluster of three masters

const SHARD_ROOMS = 100;

/**
 * The cross-instance scenario over SHARD_ROOMS rooms, once on one Redis and once on a Redis
 * Cluster of three masters (REDIS_MODE=cluster, sharded pub/sub): delivered/s, latency, the CPU
 * each Redis process spent, and how the rooms' channels spread over the shards.
 */
async function shards(workers) {
  const rows = [];
  for (const mode of ['single', 'cluster']) {
    const redis = mode === 'single' ? await startRedis() : await startRedisCluster();
    const pids = mode === 'single' ? [redis.pid] : redis.nodes.map((node) => node.pid);
    const extra = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: `shards${randomBytes(3).toString('hex')}:`,
      ...(mode === 'cluster' ? { REDIS_MODE: 'cluster' } : {}),
    };
    const [a, b] = await Promise.all([
      startTarget('switchboard', extra),
      startTarget('switchboard', extra),
    ]);
    try {
      await Promise.all([a, b].map(ready));
      const result = await workers.connect(
        2 * SIZES.cross,
        (i) => (i < WORKERS / 2 ? a.http : b.http),
        { rooms: SHARD_ROOMS },
      );
      const before = pids.map((pid) => proc(pid).cpu);
      const delivery = await broadcastAndMeasure(workers, [a, b], a, 'switchboard', result.ok, {
        rooms: SHARD_ROOMS,
        concurrency: 8,
        broadcasts: 10 * SIZES.broadcasts,
      });
      const redisCpu = pids.map((pid, i) => proc(pid).cpu - before[i]);
      const side = (from, to) => delivery.perWorker.slice(from, to).flatMap((r) => r.latencies);
      rows.push({
        mode,
        'delivered/s': delivery.rate,
        lost: delivery.lost,
        'A (local) p99 ms': percentile(side(0, WORKERS / 2), 99),
        'B (remote) p99 ms': percentile(side(WORKERS / 2, WORKERS), 99),
        'Redis CPU s, per process': redisCpu.map((cpu) => cpu.toFixed(2)).join(' / '),
        'shard channels per master':
          mode === 'cluster'
            ? (await redis.shardChannels()).map((node) => node.channels).join(' / ')
            : '–',
      });
    } finally {
      await workers.close();
      await Promise.all([a.stop(), b.stop()]);
      redis.stop();
    }
  }
  console.log(`\n### shards (${2 * SIZES.cross} clients in ${SHARD_ROOMS} rooms, two instances)\n`);
  const figures = Object.keys(rows[0]).filter((figure) => figure !== 'mode');
  console.log(`| figure | ${rows.map((row) => row.mode).join(' | ')} |`);
  console.log(`| --- | ${rows.map(() => '---:').join(' | ')} |`);
  for (const figure of figures) {
    const cells = rows.map((row) =>
      typeof row[figure] === 'number' ? format(row[figure]) : row[figure],
    );
    console.log(`| ${figure} | ${cells.join(' | ')} |`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// churn: Switchboard alone (it checks what the server leaves behind; the baseline keeps nothing)

/**
 * Two instances on one Redis; clients connect, send 20 `room.join`s and close at once, without
 * waiting for the replies, for SIZES.churnMs. Then: no room subscription, presence entry or
 * registry entry may be left in Redis, no socket in either hub, and each heap must come back to
 * within 10 % of what it was after a warm-up, both measured after a full GC.
 */
async function churn(workers, redis) {
  const { default: Redis } = await import('ioredis');
  const prefix = `churn${randomBytes(3).toString('hex')}:`;
  const extra = { REDIS_URL: redis.url, REDIS_PREFIX: prefix, WS_HEARTBEAT_MS: '5000' };
  const servers = await Promise.all([
    startTarget('switchboard', extra, ['--inspect=127.0.0.1:0']),
    startTarget('switchboard', extra, ['--inspect=127.0.0.1:0']),
  ]);
  const client = new Redis(redis.url);
  const run = (durationMs) =>
    workers.all('churn', (i) => ({
      http: servers[i % 2].http,
      prefix: `churn${randomBytes(3).toString('hex')}-`,
      durationMs,
      rooms: 20,
      roomPool: 1000,
      concurrency: 16,
    }));
  const active = async (server) =>
    Number(
      /^ws_connections_active (\d+)/m.exec(await (await fetch(`${server.http}/metrics`)).text())[1],
    );
  const keys = async (pattern) => {
    const found = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(
        cursor,
        'MATCH',
        `${prefix}${pattern}`,
        'COUNT',
        1000,
      );
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    return found;
  };
  const leftovers = async () => {
    const channels = await client.pubsub('CHANNELS', `${prefix}r:*`);
    const presence = await keys('presence:*');
    const registry = (
      await Promise.all((await keys('conns:*')).map((key) => client.zcard(key)))
    ).reduce((total, n) => total + n, 0);
    const indexes = (await keys('instance:*')).length;
    const sockets = (await Promise.all(servers.map(active))).reduce((t, n) => t + n, 0);
    return { channels: channels.length, presence: presence.length, registry, indexes, sockets };
  };
  try {
    await run(Math.min(5000, SIZES.churnMs / 2)); // warm-up: JIT, pools, lazily made structures
    const settled = async () => {
      const deadline = Date.now() + 30000;
      let left = await leftovers();
      while (Object.values(left).some((n) => n > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        left = await leftovers();
      }
      return left;
    };
    await settled();
    const before = await Promise.all(servers.map(heapAfterGc));
    const started = performance.now();
    const results = await run(SIZES.churnMs);
    const seconds = (performance.now() - started) / 1000;
    const left = await settled();
    const after = await Promise.all(servers.map(heapAfterGc));
    const cycles = sum(results.map((r) => r.cycles));
    const growth = after.map((heap, i) => (heap - before[i]) / before[i]);
    const figures = {
      'clients/s (each 20 joins, closed at once)': cycles / seconds,
      'failed cycles': sum(results.map((r) => r.failed)),
      'room subscriptions left': left.channels,
      'presence hashes left': left.presence,
      'registry entries left': left.registry,
      'instance index entries left': left.indexes,
      'sockets left in the hubs': left.sockets,
      'heap A before / after MiB': `${(before[0] / 2 ** 20).toFixed(1)} / ${(after[0] / 2 ** 20).toFixed(1)}`,
      'heap B before / after MiB': `${(before[1] / 2 ** 20).toFixed(1)} / ${(after[1] / 2 ** 20).toFixed(1)}`,
      'largest heap growth %': Math.max(...growth) * 100,
    };
    const clean = Object.values(left).every((n) => n === 0) && Math.max(...growth) <= 0.1;
    console.log(`\n### churn (${(SIZES.churnMs / 1000).toFixed(0)} s, two instances, one Redis)\n`);
    console.log('| figure | value |');
    console.log('| --- | ---: |');
    for (const [figure, value] of Object.entries(figures)) {
      console.log(`| ${figure} | ${typeof value === 'number' ? format(value) : value} |`);
    }
    console.log(`\n${clean ? 'PASS' : 'FAIL'}: nothing left behind, heap within 10 % after GC`);
    return { figures, clean };
  } finally {
    client.disconnect();
    await Promise.all(servers.map((server) => server.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// recovery: Switchboard alone (the baseline has no history to recover from)

/**
 * Two instances on one Redis. SIZES.recovery clients on A follow room "storm" while it gets
 * SIZES.recoveryRate publications a second from B; all drop at once and come back to B with
 * `room.join { since }` while the publishing goes on. Every client must then hold every offset
 * once, in order, up to the last one.
 */
async function recovery(workers, redis) {
  const prefix = `recovery${randomBytes(3).toString('hex')}:`;
  const extra = { REDIS_URL: redis.url, REDIS_PREFIX: prefix };
  const [a, b] = await Promise.all([
    startTarget('switchboard', extra),
    startTarget('switchboard', extra),
  ]);
  await Promise.all([a, b].map(ready));
  const share = Math.ceil(SIZES.recovery / WORKERS);
  let published = 0;
  let publishing = true;
  const publisher = (async () => {
    const pad = 'x'.repeat(60);
    while (publishing) {
      await publish(b, 'switchboard', 'storm', Date.now(), pad);
      published += 1;
      await new Promise((resolve) => setTimeout(resolve, 1000 / SIZES.recoveryRate));
    }
  })();
  try {
    const connectStart = performance.now();
    const connected = await workers.all('recoveryConnect', (i) => ({
      http: a.http,
      count: Math.max(0, Math.min(share, SIZES.recovery - i * share)),
      prefix: `r${randomBytes(3).toString('hex')}-${i}-`,
      room: 'storm',
      concurrency: 64,
    }));
    const connectMs = performance.now() - connectStart;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const droppedAt = performance.timeOrigin + performance.now();
    const back = await workers.all('recoveryReconnect', {
      http: b.http,
      room: 'storm',
      concurrency: 64,
      droppedAt,
    });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // live again for a while
    publishing = false;
    await publisher;
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the last publication in flight
    const checked = await workers.all('recoveryReport', { last: published });
    const samples = checked.flatMap((r) => r.samples);
    if (samples.length > 0) {
      console.log(`\nfirst offsets out of order: ${JSON.stringify(samples)}`);
    }
    const reasons = back.flatMap((r) => r.retries);
    if (reasons.length > 0) {
      console.log(`\nretry reasons: ${[...new Set(reasons)].join(', ')}`);
    }
    const figures = {
      clients: SIZES.recovery,
      'failed to connect': sum(connected.map((r) => r.failed)),
      'first connect took s': connectMs / 1000,
      'publications (during the whole run)': published,
      recovered: sum(back.map((r) => r.recovered)),
      'reset (recovered: false)': sum(back.map((r) => r.reset)),
      'retried (a ticket or socket refused)': sum(back.map((r) => r.retries.length)),
      'failed to come back': sum(back.map((r) => r.failed)),
      'all back after s': Math.max(...back.map((r) => r.backMs)) / 1000,
      'offsets seen twice or out of order': sum(checked.map((r) => r.duplicates)),
      gaps: sum(checked.map((r) => r.gaps)),
      'clients without the last offset': sum(checked.map((r) => r.short)),
    };
    const clean =
      figures.recovered === SIZES.recovery &&
      figures['offsets seen twice or out of order'] === 0 &&
      figures.gaps === 0 &&
      figures['clients without the last offset'] === 0;
    console.log(`\n### recovery (${SIZES.recovery} clients, two instances, one Redis)\n`);
    console.log('| figure | value |');
    console.log('| --- | ---: |');
    for (const [figure, value] of Object.entries(figures)) {
      console.log(`| ${figure} | ${format(value)} |`);
    }
    console.log(`\n${clean ? 'PASS' : 'FAIL'}: every client recovered, nothing lost or doubled`);
    return { figures, clean };
  } finally {
    publishing = false;
    await publisher.catch(() => undefined);
    await Promise.all([a.stop(), b.stop()]);
  }
}

// ---------------------------------------------------------------------------------------------
// main

function summarize(values) {
  const finite = values.filter(Number.isFinite);
  return {
    median: median(finite),
    min: Math.min(...finite),
    max: Math.max(...finite),
    runs: values,
  };
}

const format = (value) =>
  !Number.isFinite(value)
    ? '–'
    : Math.abs(value) >= 100
      ? value.toFixed(0)
      : Math.abs(value) >= 10
        ? value.toFixed(1)
        : value.toFixed(2);

function table(name, results) {
  const figures = Object.keys(results.switchboard[0]);
  const rows = figures.map((figure) => {
    const sb = summarize(results.switchboard.map((run) => run[figure]));
    const base = summarize(results.baseline.map((run) => run[figure]));
    const ratio = base.median === 0 ? NaN : sb.median / base.median;
    return { figure, sb, base, ratio };
  });
  const line = (cells) => `| ${cells.join(' | ')} |`;
  console.log(`\n### ${name} (${results.switchboard.length} runs each; median [min–max])\n`);
  console.log(line(['figure', 'Switchboard', 'baseline (ws)', 'ratio']));
  console.log(line(['---', '---:', '---:', '---:']));
  for (const { figure, sb, base, ratio } of rows) {
    const cell = (s) => `${format(s.median)} [${format(s.min)}–${format(s.max)}]`;
    console.log(line([figure, cell(sb), cell(base), format(ratio)]));
  }
  return rows;
}

async function main() {
  if (!existsSync(join(root, 'dist', 'main.js'))) {
    throw new Error('dist/main.js is missing: npm run bench builds it first');
  }
  const chosen = [...Object.keys(scenarios), 'churn', 'recovery', 'shards', 'storm'].filter(
    (name) => !only || only.includes(name),
  );
  console.log(
    `Switchboard benchmark${quick ? ' (quick)' : ''}: ${chosen.join(', ')}; ${reps} runs each, alternating; ` +
      `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  );
  const redis = await startRedis();
  const workers = new Workers();
  const report = {
    date: new Date().toISOString(),
    quick,
    sizes: SIZES,
    machine: { cores: cpus().length, node: process.version },
    scenarios: {},
  };
  try {
    for (const name of chosen) {
      if (name === 'churn') {
        report.scenarios.churn = await churn(workers, redis);
        continue;
      }
      if (name === 'recovery') {
        report.scenarios.recovery = await recovery(workers, redis);
        continue;
      }
      if (name === 'shards') {
        report.scenarios.shards = await shards(workers);
        continue;
      }
      if (name === 'storm') {
        report.scenarios.storm = await storm(workers, redis);
        continue;
      }
      const results = { switchboard: [], baseline: [] };
      for (let rep = 0; rep < reps; rep++) {
        const order = rep % 2 === 0 ? ['switchboard', 'baseline'] : ['baseline', 'switchboard'];
        for (const kind of order) {
          results[kind].push(await scenarios[name](kind, workers, redis));
          process.stdout.write('.');
        }
      }
      report.scenarios[name] = { runs: results, summary: table(name, results) };
    }
  } finally {
    workers.stop();
    redis.stop();
  }
  mkdirSync(join(here, 'results'), { recursive: true });
  const file = join(
    here,
    'results',
    `${report.date.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`,
  );
  writeFileSync(file, JSON.stringify(report, null, 2));
  console.log(`\nEvery run: ${file}`);
}

await main();
