// npm run bench [-- --quick] [-- --only connect,fanout,churn,recovery,storm,overload,bigroom,scale]
//   (scale, bench/scale.mjs, runs in --quick or when named: at full size it takes about 35 minutes)
//   [-- --reps 3] [-- --storm-clients N] [-- --storm-mode patient|impatient|both]
//   [-- --clients N] [-- --profile DIR] (the recovery scenario's size; CPU profiles of Switchboard)
//   [-- --env HISTORY_SIZE=0] (extra configuration for Switchboard, repeatable)
//   [-- --bigroom-members N] (bigroom's size instead of 10,000, quick 2,000)
//   [-- --dist DIR] Switchboard from DIR/main.js instead of this checkout's dist/: another build,
//     e.g. of an earlier commit: `git worktree add /tmp/sb-before <commit>`, `npm ci` and
//     `npm run build` there, then `node bench/run.mjs --dist /tmp/sb-before/dist …` (plain node:
//     `npm run bench` would build this checkout first, which is harmless but slow)
//   [-- --compare-dist DIR] bigroom only: also runs the storm at 2,000 members against the build
//     in DIR (a build from before issue 24: with PRESENCE_EVENTS_MAX_MEMBERS=100000, so that it
//     announces every join, and with its default), and against this build at 2,000 too
// Starts its own redis-server, Switchboard instances from the build (node dist/main.js) and the
// raw `ws` baseline (bench/baseline-server.mjs), drives both with the same load from worker
// processes on loopback, alternating which goes first, and prints medians [min–max] over the
// repetitions with the ratio Switchboard / baseline. Every run is also written as JSON.
import { fork, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, getPriority, loadavg, setPriority, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisCluster } from './redis-cluster.mjs';
import { scale } from './scale.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
/** `--profile DIR`: every Switchboard instance writes a CPU profile there (stopped with SIGTERM). */
const profileDir = args.includes('--profile') ? args[args.indexOf('--profile') + 1] : null;
/** `--clients N`: the recovery scenario's size instead of the default. */
const clientsArg = args.includes('--clients') ? Number(args[args.indexOf('--clients') + 1]) : 0;
/** `--dist DIR`: the Switchboard build to run (DIR/main.js); this checkout's dist/ by default. */
const distDir = args.includes('--dist')
  ? resolve(args[args.indexOf('--dist') + 1])
  : join(root, 'dist');
/** `--compare-dist DIR`: bigroom also runs at BIGROOM_COMPARE members against that build. */
const compareDist = args.includes('--compare-dist')
  ? resolve(args[args.indexOf('--compare-dist') + 1])
  : null;
const reps = args.includes('--reps') ? Number(args[args.indexOf('--reps') + 1]) : 3;
/** `--env NAME=value` (repeatable): extra configuration for every Switchboard instance. */
const extraEnv = Object.fromEntries(
  args.flatMap((arg, i) => (arg === '--env' ? [args[i + 1].split(/=(.*)/s).slice(0, 2)] : [])),
);
const WORKERS = 4;
const SECRET = randomBytes(32).toString('base64url');
const API_KEY = randomBytes(32).toString('base64url');
const METRICS_TOKEN = randomBytes(24).toString('base64url');
/** GET /metrics of a Switchboard instance (METRICS_TOKEN is required in production). */
const metricsOf = (server) =>
  fetch(`${server.http}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
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
      stormCalibrate: 300,
      overloadMs: 10000,
      echoClients: 100,
      echoMs: 3000,
      bigroom: 2000,
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
      stormCalibrate: 2000,
      overloadMs: 30000,
      echoClients: 1000,
      echoMs: 20000,
      bigroom: 10000,
    };

if (clientsArg > 0) {
  SIZES.recovery = clientsArg;
}
/** `--storm-clients N`: the storm's size instead of the default (19,000). */
const stormClientsArg = args.includes('--storm-clients')
  ? Number(args[args.indexOf('--storm-clients') + 1])
  : 0;
if (stormClientsArg > 0) {
  SIZES.storm = stormClientsArg;
}
/** `--storm-mode patient|impatient|both`: which storms to run (default both). */
const stormMode = args.includes('--storm-mode') ? args[args.indexOf('--storm-mode') + 1] : 'both';
if (!['patient', 'impatient', 'both'].includes(stormMode)) {
  throw new Error('--storm-mode is patient, impatient or both');
}
/** `--bigroom-members N`: bigroom's size instead of the default (10,000; quick 2,000). */
if (args.includes('--bigroom-members')) {
  SIZES.bigroom = Number(args[args.indexOf('--bigroom-members') + 1]);
}
/** How long a storm may run after the SIGTERM before the clients not back count as gone. */
const STORM_BOUND_MS = 180000;

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
async function startServer(kind, env, nodeArgs = [], dist = distDir) {
  const port = await freePort();
  const script = kind === 'switchboard' ? join(dist, 'main.js') : join(here, 'baseline-server.mjs');
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
    METRICS_TOKEN,
    LOG_LEVEL: 'info',
    MAX_CONNECTIONS: '20000',
    MAX_CONNECTIONS_PER_IP: '20000',
    WS_HEARTBEAT_MS: String(SIZES.heartbeatMs),
    ...extraEnv,
    ...extra,
  };
}

async function startTarget(kind, extra = {}, nodeArgs = [], dist = distDir) {
  const profile =
    kind === 'switchboard' && profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  return startServer(
    kind,
    kind === 'switchboard'
      ? switchboardEnv(extra)
      : { WS_HEARTBEAT_MS: String(SIZES.heartbeatMs), ...extra },
    [...profile, ...nodeArgs],
    dist,
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

  /** `nice` the workers (storm, overload: the driver must not starve the servers on 2 cores). */
  async renice(niceness) {
    for (const child of this.children) {
      try {
        setPriority(child.pid, niceness);
      } catch {
        // not allowed here: the line below says the workers ran at normal priority
      }
    }
    console.log(
      `\nload workers' niceness: ${this.children.map((c) => getPriority(c.pid)).join(', ')}`,
    );
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
 * B's `ws_admission_refused_total{reason}`, and as `dropped (timeout)` its upgrades not decided
 * within HANDSHAKE_TIMEOUT_MS (`ws_connections_total{outcome="timeout"}`), from /metrics.
 */
async function admissionMetrics(server) {
  const text = await (await metricsOf(server)).text();
  const refused = {};
  for (const match of text.matchAll(/^ws_admission_refused_total\{reason="(\w+)"\} (\d+)/gm)) {
    refused[match[1]] = Number(match[2]);
  }
  const timeouts = /^ws_connections_total\{outcome="timeout",transport="websocket"\} (\d+)/m.exec(
    text,
  );
  refused['dropped (timeout)'] = Number(timeouts?.[1] ?? 0);
  return refused;
}

/**
 * A short closed-loop connect phase on `target` (ticket + upgrade + welcome, 16 in flight per
 * worker, well under the gate's 256): its unsaturated rate of successful connects and CPU per
 * connect, measured in the same run as the storm or the overload.
 */
async function unsaturated(workers, target, count) {
  const before = proc(target.pid);
  const result = await workers.connect(count, target.http, { concurrency: 16 });
  const after = proc(target.pid);
  await workers.close();
  return {
    rate: (result.ok / result.ms) * 1000,
    cpuMs: ((after.cpu - before.cpu) * 1000) / Math.max(1, result.ok),
    failed: result.failed,
  };
}

/**
 * One storm. Switchboard: two instances on one Redis; SIZES.storm clients connect to A; A gets
 * SIGTERM and drains (1001 `reconnect in <ms>`); every client comes back to B with the token it
 * holds, following the server's hints as the SDK does (bench/worker.mjs `comeBack`). Baseline:
 * the same with two raw `ws` servers, A simply exits (no drain, no hint: 1006 and backoff).
 * `attemptTimeoutMs` > 0: impatient clients abandon an attempt after that long and retry.
 */
async function stormOnce(workers, redis, kind, attemptTimeoutMs) {
  const extra =
    kind === 'switchboard'
      ? {
          REDIS_URL: redis.url,
          REDIS_PREFIX: `storm${randomBytes(3).toString('hex')}:`,
          SHUTDOWN_DRAIN_MS: '5000',
          SHUTDOWN_TIMEOUT_MS: '15000',
          MAX_CONNECTIONS: '25000',
        }
      : {};
  const [a, b] = await Promise.all([startTarget(kind, extra), startTarget(kind, extra)]);
  try {
    if (kind === 'switchboard') {
      await Promise.all([a, b].map(ready));
    }
    const calm = await unsaturated(workers, b, SIZES.stormCalibrate);
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
    await workers.all('stormArm', { attemptTimeoutMs, boundMs: STORM_BOUND_MS });
    const refusedBefore = kind === 'switchboard' ? await admissionMetrics(b) : {};
    const cpuBefore = proc(b.pid).cpu;
    const signalledAt = performance.timeOrigin + performance.now();
    process.kill(a.pid, 'SIGTERM');
    let status = [];
    let cpuAtLast = cpuBefore;
    let lastSeen = 0;
    const deadline = Date.now() + STORM_BOUND_MS + 5000;
    do {
      await new Promise((resolve) => setTimeout(resolve, 500));
      status = await workers.all('stormStatus', {});
      const back = sum(status.map((r) => r.back));
      if (back > lastSeen) {
        lastSeen = back;
        cpuAtLast = proc(b.pid).cpu; // B's CPU up to (within 0.5 s of) the last client back
      }
    } while (sum(status.map((r) => r.back + r.failed)) < held && Date.now() < deadline);
    status = await workers.all('stormStatus', { times: true });
    const refusedAfter = kind === 'switchboard' ? await admissionMetrics(b) : {};
    const refusals = {};
    for (const r of status) {
      for (const [reason, n] of Object.entries(r.refusals)) {
        refusals[reason] = (refusals[reason] ?? 0) + n;
      }
    }
    const times = status.flatMap((r) => r.backTimes).map((t) => (t - signalledAt) / 1000);
    const back = times.length;
    const firstBack = Math.min(...times);
    const lastBack = Math.max(...times);
    const admission = Object.fromEntries(
      Object.entries(refusedAfter).map(([reason, n]) => [reason, n - (refusedBefore[reason] ?? 0)]),
    );
    const figures = {
      'connected to A': held,
      'first connect took s': connectMs / 1000,
      'back on B': back,
      'not back at the bound (gave up)': sum(status.map((r) => r.failed)),
      'all back after s (from SIGTERM)': back === held ? lastBack : NaN,
      'back within 30 s': times.filter((t) => t <= 30).length,
      'back within 60 s': times.filter((t) => t <= 60).length,
      'back within 120 s': times.filter((t) => t <= 120).length,
      'client timeouts (server)': sum(status.map((r) => r.timeouts)),
      'client timeouts during a worker stall (excluded)': sum(status.map((r) => r.stallTimeouts)),
      'worker loop lag max ms': Math.max(...status.map((r) => r.maxLagMs)),
      attempts: sum(status.map((r) => r.attempts)),
      'upgrades retried with the same ticket': sum(status.map((r) => r.ticketReused)),
      'B unsaturated connects/s': calm.rate,
      'B connects/s during the storm (first to last back)':
        back > 1 ? back / (lastBack - firstBack) : NaN,
      'B unsaturated CPU ms/connect': calm.cpuMs,
      'B CPU ms per reconnect (SIGTERM to last back)':
        ((cpuAtLast - cpuBefore) * 1000) / Math.max(1, back),
    };
    // The busiest 5 s: while the demand is above B's capacity, this is B's rate under the storm.
    const sorted = Float64Array.from(times).sort();
    let busiest = 0;
    for (let i = 0, j = 0; i < sorted.length; i++) {
      while (sorted[i] - sorted[j] > 5) {
        j += 1;
      }
      busiest = Math.max(busiest, i - j + 1);
    }
    figures['B connects/s, busiest 5 s of the storm'] = busiest / 5;
    figures['storm rate / unsaturated'] =
      figures['B connects/s during the storm (first to last back)'] / calm.rate;
    figures['busiest 5 s / unsaturated'] = busiest / 5 / calm.rate;
    return { figures, refusals, admission, attemptTimeoutMs };
  } finally {
    await workers.all('stormClose');
    await Promise.all([a.stop(), b.stop()]);
  }
}

/**
 * The storm, patient (no client timeout) and/or impatient (20 s per attempt), and the raw `ws`
 * baseline's storm (patient) for the §16 target "within 2× the time the raw server needs".
 */
async function storm(workers, redis) {
  await workers.renice(10);
  const modes = stormMode === 'both' ? ['patient', 'impatient'] : [stormMode];
  const runs = {};
  runs.baseline = await stormOnce(workers, redis, 'baseline', 0);
  for (const mode of modes) {
    runs[mode] = await stormOnce(workers, redis, 'switchboard', mode === 'patient' ? 0 : 20000);
  }
  const columns = [...modes.map((mode) => `Switchboard ${mode}`), 'baseline (ws) patient'];
  const rows = [...modes.map((mode) => runs[mode]), runs.baseline];
  console.log(
    `\n### storm (${SIZES.storm} clients drained from A to B; unsaturated rate from ` +
      `${SIZES.stormCalibrate} connects to B first)\n`,
  );
  console.log(`| figure | ${columns.join(' | ')} |`);
  console.log(`| --- | ${columns.map(() => '---:').join(' | ')} |`);
  for (const figure of Object.keys(rows[0].figures)) {
    console.log(`| ${figure} | ${rows.map((row) => format(row.figures[figure])).join(' | ')} |`);
  }
  for (const [name, run] of Object.entries(runs)) {
    console.log(`\n${name}: client-side failures ${JSON.stringify(run.refusals)}`);
    if (name !== 'baseline') {
      console.log(
        `${name}: B ws_admission_refused_total (during) ${JSON.stringify(run.admission)}`,
      );
    }
  }
  const rawTime = runs.baseline.figures['all back after s (from SIGTERM)'];
  for (const mode of modes) {
    const f = runs[mode].figures;
    const allBack =
      f['back on B'] === f['connected to A'] && f['not back at the bound (gave up)'] === 0;
    const time = f['all back after s (from SIGTERM)'];
    console.log(
      `${mode}: every client back ${allBack ? 'MET' : 'MISSED'}; within 2× the raw server's ` +
        `${format(rawTime)} s: ${time <= 2 * rawTime ? 'MET' : 'MISSED'} (${format(time)} s); ` +
        `storm rate ≥ 80 % of unsaturated: ${f['storm rate / unsaturated'] >= 0.8 ? 'MET' : 'MISSED'} ` +
        `(${format(100 * f['storm rate / unsaturated'])} %)`,
    );
  }
  return runs;
}

/**
 * Switchboard alone: B's capacity from a closed-loop connect phase, then 5× that offered as
 * open-loop arrivals (ticket + upgrade, closed at the welcome) for SIZES.overloadMs. Goodput,
 * the share refused with 503, /health/live and /health/ready every second (must stay 200), RSS
 * before, at peak and 10 s after.
 */
async function overload(workers, redis) {
  await workers.renice(10);
  const extra = {
    REDIS_URL: redis.url,
    REDIS_PREFIX: `overload${randomBytes(3).toString('hex')}:`,
    MAX_CONNECTIONS: '25000',
  };
  const b = await startTarget('switchboard', extra);
  try {
    await ready(b);
    const calm = await unsaturated(workers, b, SIZES.stormCalibrate);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssBefore = proc(b.pid).rss;
    const refusedBefore = await admissionMetrics(b);
    const rate = Math.round(5 * calm.rate);
    const health = { live: {}, ready: {} };
    let peakRss = rssBefore;
    let sampling = true;
    const probe = async (path) => {
      try {
        const res = await fetch(`${b.http}${path}`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        return String(res.status);
      } catch (error) {
        return error.name === 'TimeoutError' ? 'timeout 5 s' : 'error';
      }
    };
    const sampler = (async () => {
      while (sampling) {
        const tick = new Promise((resolve) => setTimeout(resolve, 1000));
        peakRss = Math.max(peakRss, proc(b.pid).rss);
        const [live, ready] = await Promise.all([probe('/health/live'), probe('/health/ready')]);
        health.live[live] = (health.live[live] ?? 0) + 1;
        health.ready[ready] = (health.ready[ready] ?? 0) + 1;
        await tick;
      }
    })();
    const cpuBefore = proc(b.pid).cpu;
    const started = performance.now();
    const results = await workers.all('overload', (i) => ({
      http: b.http,
      rate: rate / WORKERS,
      durationMs: SIZES.overloadMs,
      prefix: `o${randomBytes(3).toString('hex')}-${i}-`,
      maxInFlight: 2000,
      timeoutMs: 20000,
    }));
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = proc(b.pid).cpu;
    sampling = false;
    await sampler;
    const refusedAfter = await admissionMetrics(b);
    await new Promise((resolve) => setTimeout(resolve, 10000));
    const rssAfter = proc(b.pid).rss;
    const merge = (key) => {
      const merged = {};
      for (const r of results) {
        for (const [k, n] of Object.entries(r[key])) {
          merged[k] = (merged[k] ?? 0) + n;
        }
      }
      return merged;
    };
    const offered = sum(results.map((r) => r.offered));
    const ok = sum(results.map((r) => r.ok));
    const refused = merge('refused');
    const refusedCount = sum(Object.values(refused));
    const figures = {
      'B capacity (closed loop) connects/s': calm.rate,
      'offered arrivals/s (target 5× capacity)': rate,
      'sent (not skipped by the 2,000-per-worker bound)': offered,
      'skipped (driver bound)': sum(results.map((r) => r.skipped)),
      'actually sent arrivals/s': offered / (SIZES.overloadMs / 1000),
      'goodput connects/s (over the whole run)': ok / seconds,
      'goodput / capacity': ok / seconds / calm.rate,
      'refused with 503 %': (100 * refusedCount) / Math.max(1, offered),
      'client timeouts (20 s)': sum(results.map((r) => r.timeouts)),
      'other failures': sum(Object.values(merge('failed'))),
      'B CPU ms per successful connect': ((cpuAfter - cpuBefore) * 1000) / Math.max(1, ok),
      'B RSS before MiB': rssBefore / 2 ** 20,
      'B RSS peak MiB': peakRss / 2 ** 20,
      'B RSS 10 s after MiB': rssAfter / 2 ** 20,
      'worker loop lag max ms': Math.max(...results.map((r) => r.maxLagMs)),
    };
    const admission = Object.fromEntries(
      Object.entries(refusedAfter).map(([reason, n]) => [reason, n - (refusedBefore[reason] ?? 0)]),
    );
    console.log(`\n### overload (5× B's capacity offered for ${SIZES.overloadMs / 1000} s)\n`);
    console.log('| figure | value |');
    console.log('| --- | ---: |');
    for (const [figure, value] of Object.entries(figures)) {
      console.log(`| ${figure} | ${format(value)} |`);
    }
    console.log(
      `\nrefused: ${JSON.stringify(refused)}; other failures: ${JSON.stringify(merge('failed'))}`,
    );
    console.log(`B ws_admission_refused_total (during): ${JSON.stringify(admission)}`);
    console.log(
      `health every second: live ${JSON.stringify(health.live)}, ready ${JSON.stringify(health.ready)}`,
    );
    const healthy =
      Object.keys(health.live).join() === '200' && Object.keys(health.ready).join() === '200';
    console.log(`${healthy ? 'PASS' : 'FAIL'}: /health/live and /health/ready 200 throughout`);
    return { figures, refused, failed: merge('failed'), admission, health, healthy };
  } finally {
    await b.stop();
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
  // Every transport's open connections (the gauge has a series per `transport`).
  const active = async (server) =>
    [
      ...(await (await metricsOf(server)).text()).matchAll(
        /^ws_connections_active\{[^}]*\} (\d+)/gm,
      ),
    ]
      .map((match) => Number(match[1]))
      .reduce((sum, n) => sum + n, 0);
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
// bigroom: Switchboard alone (docs/BENCHMARKS.md, Large rooms)

/** bigroom: the joins are sent spread evenly over this long. */
const BIGROOM_JOIN_MS = 10000;
/** bigroom: the size of the storm against the other build (`--compare-dist`). */
const BIGROOM_COMPARE = 2000;
/** bigroom: the batch the target is stated in (PRESENCE_BATCH_MS, its default). */
const BIGROOM_BATCH_MS = 250;
/** bigroom: joins measured for CPU per join, into the big room and into rooms of 10. */
const BIGROOM_EXTRA = 200;
const BIGROOM_SMALL_SIZE = 10;
/** bigroom: how long every wait may last (a join's answer, the message's last delivery). */
const BIGROOM_BOUND_MS = 60000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Adds up the workers' histograms ({ value: members }). */
function mergeHistograms(histograms) {
  const merged = {};
  for (const histogram of histograms) {
    for (const [value, n] of Object.entries(histogram)) {
      merged[value] = (merged[value] ?? 0) + n;
    }
  }
  return merged;
}
const histogramMax = (histogram) => Math.max(...Object.keys(histogram).map(Number));
const membersAbove = (histogram, limit) =>
  sum(Object.entries(histogram).map(([value, n]) => (Number(value) > limit ? n : 0)));

/**
 * One bigroom run: two instances of the build in `dist` on one Redis; `size` members connect
 * (half to each instance, without a room), then join room "big" spread evenly over
 * BIGROOM_JOIN_MS. Then: the counts 1 s after the last join, a `room.message` to all, and the
 * server CPU per join of BIGROOM_EXTRA more joins into the big room against as many joins into
 * rooms of BIGROOM_SMALL_SIZE (the same sockets, the same servers).
 */
async function bigroomOnce(workers, redis, { dist, size, env }) {
  const load = loadavg()[0];
  const extra = {
    REDIS_URL: redis.url,
    REDIS_PREFIX: `bigroom${randomBytes(3).toString('hex')}:`,
    MAX_CONNECTIONS: '25000',
    WS_HEARTBEAT_MS: '30000',
    ...env,
  };
  const [a, b] = await Promise.all([
    startTarget('switchboard', extra, [], dist),
    startTarget('switchboard', extra, [], dist),
  ]);
  const pids = [a.pid, b.pid];
  const serverCpu = () => sum(pids.map((pid) => proc(pid).cpu));
  // Workers 0 and 1 hold their members on A, 2 and 3 on B; consecutive indexes alternate.
  const share = (count, i) => Math.floor(count / WORKERS) + (i < count % WORKERS ? 1 : 0);
  const httpOf = (i) => (i < WORKERS / 2 ? a.http : b.http);
  const prefix = `b${randomBytes(3).toString('hex')}-`;
  try {
    await Promise.all([a, b].map(ready));
    const connectStart = performance.now();
    const connected = await workers.all('bigConnect', (i) => ({
      http: httpOf(i),
      group: 'members',
      count: share(size, i),
      worker: i,
      workers: WORKERS,
      prefix,
      concurrency: 64,
    }));
    const connectMs = performance.now() - connectStart;
    const extras = await workers.all('bigConnect', (i) => ({
      http: httpOf(i),
      group: 'extras',
      count: share(BIGROOM_EXTRA, i),
      worker: i,
      workers: WORKERS,
      prefix: `${prefix}x`,
      concurrency: 16,
    }));
    const smallRooms = BIGROOM_EXTRA;
    const join = async (group, room, { rooms = 0, limit, spreadMs }) => {
      const startAt = Date.now() + 300;
      const results = await workers.all('bigJoin', {
        group,
        room,
        rooms,
        limit,
        startAt,
        intervalMs: spreadMs / limit,
        timeoutMs: BIGROOM_BOUND_MS,
      });
      const lastDoneAt = Math.max(...results.map((r) => r.lastDoneAt));
      return {
        lastAnsweredAt: Math.max(...results.map((r) => r.lastAnsweredAt)),
        lastSentAt: Math.max(...results.map((r) => r.lastSentAt)),
        maxLateMs: Math.max(...results.map((r) => r.maxLateMs)),
        serverLatencies: results.flatMap((r) => r.serverLatencies),
        refusals: mergeHistograms(results.map((r) => r.refusals)),
        joined: sum(results.map((r) => r.joined)),
        refused: sum(results.map((r) => r.refused)),
        unanswered: sum(results.map((r) => r.unanswered)),
        startAt,
        lastDoneAt,
        allMs: lastDoneAt - startAt,
        latencies: results.flatMap((r) => r.latencies),
      };
    };
    // Rooms of 10 for the per-join comparison, made of the first members (not measured).
    const prefill = Math.min(size, smallRooms * BIGROOM_SMALL_SIZE);
    await join('members', 'small', { rooms: smallRooms, limit: prefill, spreadMs: prefill });
    await sleep(1000);

    // The storm.
    const driverCpu = () => sum(workers.children.map((child) => proc(child.pid).cpu));
    const cpuBefore = serverCpu();
    const redisBefore = proc(redis.pid).cpu;
    const driverBefore = driverCpu();
    const storm = await join('members', 'big', { limit: size, spreadMs: BIGROOM_JOIN_MS });
    await sleep(Math.max(0, storm.lastDoneAt + 1000 - Date.now()));
    const stormCpu = serverCpu() - cpuBefore;
    const redisCpu = proc(redis.pid).cpu - redisBefore;
    const stormDriverCpu = driverCpu() - driverBefore;
    const stormSeconds = (Date.now() - storm.startAt) / 1000;
    const checks = await workers.all('bigCheck', {
      group: 'members',
      expected: storm.joined,
      windowMs: BIGROOM_BATCH_MS,
      frames: true,
    });

    // One message to everyone.
    const sentAt = performance.timeOrigin + performance.now();
    await workers.call(0, 'bigMessage', { from: 0, text: `bigroom@${sentAt}` });
    let delivered = [];
    const deadline = Date.now() + BIGROOM_BOUND_MS;
    do {
      await sleep(100);
      delivered = await workers.all('bigDelivered');
    } while (sum(delivered.map((r) => r.delivered)) < storm.joined && Date.now() < deadline);
    const later = await workers.all('bigCheck', {
      group: 'members',
      expected: storm.joined,
      windowMs: BIGROOM_BATCH_MS,
      frames: false,
    });

    // CPU per join: idle first, then BIGROOM_EXTRA joins into rooms of 10, then into the big room.
    const perJoin = async (room, rooms) => {
      const idleFrom = serverCpu();
      await sleep(2000);
      const idlePerMs = (serverCpu() - idleFrom) / 2000;
      const before = serverCpu();
      const started = performance.now();
      const result = await join('extras', room, {
        rooms,
        limit: BIGROOM_EXTRA,
        spreadMs: 1000,
      });
      await sleep(Math.max(0, result.lastDoneAt + 1000 - Date.now()));
      const cpu = serverCpu() - before;
      const idle = idlePerMs * (performance.now() - started);
      return { ...result, cpuMs: ((cpu - idle) * 1000) / Math.max(1, result.joined), idle };
    };
    const small = await perJoin('small', smallRooms);
    const bigger = await perJoin('big', 0);

    const sent = mergeHistograms(checks.map((c) => c.sentPerWindow));
    const received = mergeHistograms(checks.map((c) => c.receivedPerWindow));
    const perSecond = mergeHistograms(checks.map((c) => c.sentPerSecond));
    const closest = mergeHistograms(checks.map((c) => c.closestGap));
    const presence = checks.flatMap((c) => c.presence);
    const wrong = mergeHistograms(checks.map((c) => c.wrong));
    const deliveredCount = sum(delivered.map((r) => r.delivered));
    const lastDelivery = Math.max(...delivered.map((r) => r.lastAt));
    const figures = {
      'load average (1 min) at the start': load,
      'members connected': size - sum(connected.map((r) => r.failed)),
      'connect took s': connectMs / 1000,
      'joined (of the members)': storm.joined,
      'joins refused / unanswered': `${storm.refused} / ${storm.unanswered}`,
      'all joined after s (joins sent over 10 s)': storm.allMs / 1000,
      'all answered after s (server ts of the last room.joined)':
        (storm.lastAnsweredAt - storm.startAt) / 1000,
      'last join sent after s (due at 10 s)': (storm.lastSentAt - storm.startAt) / 1000,
      'joins sent late by the driver, max ms': storm.maxLateMs,
      'join answered p50 / p99 / max ms (server ts − sent)': [50, 99, 100]
        .map((p) => format(percentile(storm.serverLatencies, p)))
        .join(' / '),
      'join reply received p50 / p99 / max ms': [50, 99, 100]
        .map((p) => format(percentile(storm.latencies, p)))
        .join(' / '),
      'presence frames per member in one 250 ms batch, max (server ts)': histogramMax(sent),
      'members with > 1 in a 250 ms window (server ts)': membersAbove(sent, 1),
      'presence frames per member in one second, max (server ts)': histogramMax(perSecond),
      'members with > 4 in a second (server ts)': membersAbove(perSecond, 4),
      'members whose closest two frames were < 10 / < 125 / < 200 / < 240 / < 250 ms apart (server ts)':
        [10, 125, 200, 240, 250].map((limit) => closest[limit] ?? 0).join(' / '),
      'members with more frames than batches from their first to their last (server ts)': sum(
        checks.map((c) => c.moreThanBatches),
      ),
      'presence frames per member in 250 ms, max (received)': histogramMax(received),
      'presence frames per member, median': median(presence),
      'presence frames per member, max': Math.max(...presence),
      'presence KiB per member': sum(checks.map((c) => c.presenceBytes)) / 1024 / Math.max(1, size),
      'frames per member (all kinds)': sum(checks.map((c) => c.frames)) / Math.max(1, size),
      'right count 1 s after the last join': sum(checks.map((c) => c.right)),
      'count unknown (no room.joined)': sum(checks.map((c) => c.unknown)),
      'right count after the message': sum(later.map((c) => c.right)),
      'message delivered': deliveredCount,
      'message: last delivery after ms': deliveredCount > 0 ? lastDelivery - sentAt : NaN,
      'server CPU s, join storm (A + B, to 1 s after)': stormCpu,
      'server CPU ms per join, storm': (stormCpu * 1000) / Math.max(1, storm.joined),
      'Redis CPU s, join storm': redisCpu,
      'driver CPU s, join storm (4 workers)': stormDriverCpu,
      'join storm wall-clock s (to 1 s after)': stormSeconds,
      [`CPU ms per join, ${BIGROOM_EXTRA} joins into rooms of ${BIGROOM_SMALL_SIZE}`]: small.cpuMs,
      [`CPU ms per join, ${BIGROOM_EXTRA} joins into the big room`]: bigger.cpuMs,
      'big / small per-join CPU': bigger.cpuMs / small.cpuMs,
      'extra joins answered (small / big)': `${small.joined} / ${bigger.joined}`,
      'driver loop lag max ms': Math.max(...checks.map((c) => c.maxLagMs)),
      'load average (1 min) at the end': loadavg()[0],
    };
    return {
      figures,
      histograms: { sentPerWindow: sent, receivedPerWindow: received, perSecond, closest, wrong },
      extrasFailed: sum(extras.map((r) => r.failed)),
      connectRetries: mergeHistograms([...connected, ...extras].map((r) => r.retries)),
      joinRefusals: storm.refusals,
    };
  } finally {
    await workers.all('bigClose');
    await Promise.all([a.stop(), b.stop()]);
  }
}

/**
 * The §18 target: SIZES.bigroom members join one room within 10 s across two instances; each
 * gets at most one presence frame per 250 ms batch, every one ends with the right count, and a
 * `room.message` then reaches all. With `--compare-dist`, also at BIGROOM_COMPARE members: this
 * build, and the other build with every join announced and with its default.
 */
/** Members of a run whose closest two presence frames were less than `limit` ms apart. */
const closestBelow = (run, limit) =>
  sum(
    Object.entries(run.histograms.closest).map(([bucket, n]) => (Number(bucket) <= limit ? n : 0)),
  );

async function bigroom(workers, redis) {
  await workers.renice(10);
  const configurations = [
    { name: `${SIZES.bigroom} members`, dist: distDir, size: SIZES.bigroom, env: {} },
  ];
  if (compareDist !== null) {
    if (SIZES.bigroom !== BIGROOM_COMPARE) {
      configurations.push({
        name: `${BIGROOM_COMPARE} members`,
        dist: distDir,
        size: BIGROOM_COMPARE,
        env: {},
      });
    }
    configurations.push(
      {
        name: `compared build, ${BIGROOM_COMPARE}, PRESENCE_EVENTS_MAX_MEMBERS=100000`,
        dist: compareDist,
        size: BIGROOM_COMPARE,
        env: { PRESENCE_EVENTS_MAX_MEMBERS: '100000' },
      },
      {
        name: `compared build, ${BIGROOM_COMPARE}, its default`,
        dist: compareDist,
        size: BIGROOM_COMPARE,
        env: {},
      },
    );
  }
  const runs = [];
  for (const configuration of configurations) {
    const run = await bigroomOnce(workers, redis, configuration);
    runs.push({ ...configuration, ...run });
    process.stdout.write('.');
  }
  console.log(
    `\n### bigroom (members join one room over ${BIGROOM_JOIN_MS / 1000} s, two instances, one Redis)\n`,
  );
  if (compareDist !== null) {
    console.log(`build: ${distDir}\ncompared build: ${compareDist}\n`);
  }
  console.log(`| figure | ${runs.map((run) => run.name).join(' | ')} |`);
  console.log(`| --- | ${runs.map(() => '---:').join(' | ')} |`);
  const cell = (value) =>
    Number.isInteger(value) ? String(value) : typeof value === 'number' ? format(value) : value;
  for (const figure of Object.keys(runs[0].figures)) {
    const cells = runs.map((run) => cell(run.figures[figure]));
    console.log(`| ${figure} | ${cells.join(' | ')} |`);
  }
  for (const run of runs) {
    const f = run.figures;
    const n = f['joined (of the members)'];
    const verdict = (ok) => (ok ? 'MET' : 'MISSED');
    console.log(
      `\n${run.name}: all ${run.size} joined ${verdict(n === run.size)} (${n}, the last ` +
        `${format(f['all joined after s (joins sent over 10 s)'])} s after the first was sent); ` +
        `≤ 1 presence frame per 250 ms batch ` +
        `${verdict(f['members with > 1 in a 250 ms window (server ts)'] === 0)} ` +
        `(max ${f['presence frames per member in one 250 ms batch, max (server ts)']}); ` +
        `one frame per batch (no member with more frames than batches, none two < 125 ms ` +
        `apart) ${verdict(f['members with more frames than batches from their first to their last (server ts)'] === 0 && closestBelow(run, 125) === 0)}; ` +
        `right count ${verdict(f['right count 1 s after the last join'] === n)} ` +
        `(${f['right count 1 s after the last join']} of ${n}); message to all ` +
        `${verdict(f['message delivered'] === n)} (${f['message delivered']} of ${n}); ` +
        `per-join CPU big / small ${format(f['big / small per-join CPU'])}× ` +
        `(same order: ${verdict(f['big / small per-join CPU'] < 10)})`,
    );
    if (Object.keys(run.connectRetries).length > 0) {
      console.log(`${run.name}: connect attempts retried ${JSON.stringify(run.connectRetries)}`);
    }
    if (Object.keys(run.joinRefusals).length > 0) {
      console.log(`${run.name}: joins refused, by code ${JSON.stringify(run.joinRefusals)}`);
    }
    const wrong = Object.entries(run.histograms.wrong).sort(([, x], [, y]) => y - x);
    if (wrong.length > 0) {
      console.log(
        `${run.name}: wrong counts (count − members: members) ${JSON.stringify(Object.fromEntries(wrong.slice(0, 12)))}`,
      );
    }
  }
  return runs;
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
  if (!existsSync(join(distDir, 'main.js'))) {
    throw new Error(`${join(distDir, 'main.js')} is missing: npm run bench builds it first`);
  }
  if (compareDist !== null && !existsSync(join(compareDist, 'main.js'))) {
    throw new Error(`--compare-dist: ${join(compareDist, 'main.js')} is missing`);
  }
  const chosen = [
    ...Object.keys(scenarios),
    'churn',
    'recovery',
    'shards',
    'storm',
    'overload',
    'bigroom',
    'scale',
  ].filter((name) => (only ? only.includes(name) : name !== 'scale' || quick));
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
    machine: { cores: cpus().length, node: process.version, loadavg: loadavg() },
    dist: distDir,
    compareDist,
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
      if (name === 'overload') {
        report.scenarios.overload = await overload(workers, redis);
        continue;
      }
      if (name === 'bigroom') {
        report.scenarios.bigroom = await bigroom(workers, redis);
        continue;
      }
      if (name === 'scale') {
        report.scenarios.scale = await scale({ quick, dist: distDir });
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
