// The `scale` benchmark (issue 26; docs/BENCHMARKS.md): 100,000 authenticated connections over six
// Switchboard instances on this one machine and a Redis Cluster of three masters, held for
// 10 minutes with heartbeats running, while a `toAll` and a `toRoom` (of a room with members on
// every instance) are published in turn: drops, who got each one and when (the clients' clock and
// the servers' `ws_delivery_lag_seconds`), RSS per connection, the CPU of the servers, Redis and
// the load driver. Before it, a cost curve: the same per-instance load on 1, 2, 4 and 6
// instances, to show what N instances would hold where this machine cannot.
//
//   npm run bench -- --only scale [--quick]
//   node bench/scale.mjs [--quick] [--dist DIR] [--clients N] [--hold-s S] [--no-curve]
//     --dist DIR   Switchboard from DIR/main.js (default: this checkout's dist/, from npm run build)
//     --clients N  the scale run's size instead of 100,000 (quick: 3,000)
//     --hold-s S   how long it holds them instead of 600 s (quick: 15 s)
//     --no-curve   the scale run alone
//     --auth bearer  clients upgrade with `Authorization: Bearer <JWT>` instead of a ticket
//     --addresses N  the clients' loopback source addresses, 127.0.0.1 … 127.0.0.N (default 4)
//
// Authentication: every client signs its own HS256 access token with the bench's JWT_SECRET (the
// way a host application's tokens are made), fetches a single-use ticket with it from the
// instance it will connect to (POST /auth/ws-ticket), and upgrades with `?ticket=`: no client
// skips the ticket. Clients are driven from worker processes (bench/scale-worker.mjs), each bound
// to one of four loopback source addresses. Every process this starts is killed when it ends,
// fails, is bounded out, or gets Ctrl-C.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRedisCluster } from './redis-cluster.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const run = promisify(execFile);

/** The loopback source addresses of the clients: 127.0.0.1 … 127.0.0.<count>. */
const addressList = (count) => Array.from({ length: count }, (_, i) => `127.0.0.${i + 1}`);
/** File descriptors a process keeps for other things than its clients: listeners, Redis, pipes. */
const FD_RESERVE = 200;
/** Client ports left free per source address (ticket requests, retries, other work). */
const PORT_RESERVE = 1000;
const ROOM = 'scale-spread';
const CLOCK_TICKS =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const SIZES = {
  quick: {
    clients: 900,
    instances: 6,
    holdMs: 8000,
    heartbeatMs: 2000,
    broadcastGapMs: 2000,
    roomEvery: 5,
    concurrency: 16,
    baselineMs: 1000,
    joinSpreadMs: 1000,
    connectBoundMs: 45000,
    curve: { steps: [1, 2, 4, 6], perInstance: 100, holdMs: 2500, broadcastGapMs: 1000 },
    boundMs: 170000,
  },
  full: {
    clients: 100000,
    instances: 6,
    holdMs: 600000,
    heartbeatMs: 30000,
    broadcastGapMs: 15000,
    roomEvery: 10,
    concurrency: 32,
    baselineMs: 10000,
    joinSpreadMs: 10000,
    connectBoundMs: 1200000,
    curve: { steps: [1, 2, 4, 6], perInstance: 4000, holdMs: 60000, broadcastGapMs: 6000 },
    boundMs: 3600000,
  },
};

// ---------------------------------------------------------------------------------------------
// small helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (values) => values.reduce((total, value) => total + value, 0);
const now = () => performance.timeOrigin + performance.now();

function percentile(values, p) {
  if (values.length === 0) {
    return NaN;
  }
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A percentile of a `{ value: count }` histogram (integer milliseconds). */
function histogramPercentile(histogram, p) {
  const entries = Object.entries(histogram)
    .map(([value, count]) => [Number(value), count])
    .sort(([a], [b]) => a - b);
  const total = sum(entries.map(([, count]) => count));
  if (total === 0) {
    return NaN;
  }
  let seen = 0;
  for (const [value, count] of entries) {
    seen += count;
    if (seen >= (p / 100) * total) {
      return value;
    }
  }
  return entries.at(-1)[0];
}

function mergeHistograms(histograms) {
  const merged = {};
  for (const histogram of histograms) {
    for (const [value, count] of Object.entries(histogram ?? {})) {
      merged[value] = (merged[value] ?? 0) + count;
    }
  }
  return merged;
}

const format = (value) =>
  typeof value !== 'number'
    ? String(value)
    : !Number.isFinite(value)
      ? '–'
      : Number.isInteger(value) && Math.abs(value) >= 1000
        ? value.toLocaleString('en-US')
        : Math.abs(value) >= 100
          ? value.toFixed(0)
          : Math.abs(value) >= 10
            ? value.toFixed(1)
            : value.toFixed(2);

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc; zeros once it is gone. */
function proc(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    return { cpu, rss: rssKb * 1024 };
  } catch {
    return { cpu: 0, rss: 0 };
  }
}

/** MemAvailable of the machine, bytes. */
function memAvailable() {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
}

/** The kernel's TCP sockets: in use, in TIME_WAIT, and their buffer memory (bytes). */
function tcpSockets() {
  const line = /TCP: (.*)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))[1].split(' ');
  const field = (name) => Number(line[line.indexOf(name) + 1]);
  return { inuse: field('inuse'), tw: field('tw'), memBytes: field('mem') * 4096 };
}

const readNumber = (path) => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return 'n/a';
  }
};

// ---------------------------------------------------------------------------------------------
// limits: what this machine lets the run hold

/** This process's open-files limit (soft, hard), as children inherit it. */
function fileLimit() {
  const line = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(
    readFileSync('/proc/self/limits', 'utf8'),
  );
  const parse = (value) => (value === 'unlimited' ? Infinity : Number(value));
  return { soft: parse(line[1]), hard: parse(line[2]) };
}

/**
 * The limits that apply, and the largest number of clients they let the run hold: each instance
 * and each load worker is one process under the open-files limit (raised to the hard limit for
 * the children, with a shell's `ulimit -n`, when the soft one is lower), and each source address
 * has the ephemeral port range for its client ports.
 */
function limits(requested, instances, addresses) {
  const { soft, hard } = fileLimit();
  const fds = Math.min(hard, 1_048_576);
  const [low, high] = readNumber('/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/).map(Number);
  const portsPerAddress = high - low + 1;
  const perInstance = fds - FD_RESERVE;
  const perWorker = fds - FD_RESERVE;
  const clientPorts = addresses.length * (portsPerAddress - PORT_RESERVE);
  const bounds = {
    'open files per instance': instances * perInstance,
    'client ports (source addresses × port range)': clientPorts,
  };
  const planned = Math.min(requested, ...Object.values(bounds));
  const limitedBy =
    planned < requested
      ? Object.entries(bounds).find(([, bound]) => bound === planned)[0]
      : 'none: the requested size fits';
  const workers = addresses.length * Math.max(1, Math.ceil(planned / perWorker / addresses.length));
  return {
    openFiles: { soft, hard, children: fds, raised: fds > soft },
    fileMax: readNumber('/proc/sys/fs/file-max'),
    portRange: `${low}-${high}`,
    portsPerAddress,
    addresses,
    clientPorts,
    perInstance,
    perWorker,
    workers,
    somaxconn: readNumber('/proc/sys/net/core/somaxconn'),
    conntrackMax: readNumber('/proc/sys/net/netfilter/nf_conntrack_max'),
    tcpTwReuse: readNumber('/proc/sys/net/ipv4/tcp_tw_reuse'),
    requested,
    planned,
    limitedBy,
    bounds,
  };
}

// ---------------------------------------------------------------------------------------------
// processes: everything started here is in `children`, killed on the way out

const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) {
    child.kill('SIGKILL');
  }
}

/**
 * Spawns `node args…` with the open-files limit raised to `fds` when this process' soft limit is
 * lower (through `sh -c 'ulimit -n N && exec node …'`, so that the pid is node's).
 */
function spawnNode(args, options, fds) {
  if (fileLimit().soft >= fds) {
    return spawn(process.execPath, args, options);
  }
  const quoted = [process.execPath, ...args].map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`);
  return spawn('sh', ['-c', `ulimit -n ${fds} && exec ${quoted.join(' ')}`], options);
}

class Instance {
  static async start(dist, env, fds) {
    const port = await freePort();
    const child = track(
      spawnNode(
        [join(dist, 'main.js')],
        {
          env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
        fds,
      ),
    );
    const instance = new Instance(child, `http://127.0.0.1:${port}`, env.METRICS_TOKEN);
    let errors = 0;
    child.stderr.on('data', (chunk) => {
      if (errors++ < 20) {
        process.stderr.write(`[instance ${port}] ${chunk}`);
      }
    });
    // Its log: warnings and errors kept (the first ones printed), the rest only counted.
    createInterface({ input: child.stdout }).on('line', (line) => {
      instance.logLines += 1;
      const level = /"level":"(warn|error|fatal)"/.exec(line)?.[1];
      if (level !== undefined) {
        const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? '?';
        const key = `${level}: ${msg}`;
        instance.warnings[key] = (instance.warnings[key] ?? 0) + 1;
        if (instance.warningLines.length < 50) {
          instance.warningLines.push(line.slice(0, 2000));
        }
        if (instance.warnings[key] <= 3) {
          console.log(`[instance ${port}] ${line.slice(0, 600)}`);
        }
      }
    });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`instance ${port} did not start`)), 60000);
      child.once('exit', (code) => reject(new Error(`instance ${port} exited (${code})`)));
      child.stdout.on('data', function listening(chunk) {
        if (/"url":"http:\/\/127\.0\.0\.1:\d+"/.test(chunk.toString())) {
          clearTimeout(timer);
          child.stdout.off('data', listening);
          resolve();
        }
      });
    });
    const deadline = Date.now() + 60000;
    while ((await fetch(`${instance.http}/health/ready`).catch(() => null))?.status !== 200) {
      if (Date.now() > deadline) {
        throw new Error(`${instance.http} did not become ready`);
      }
      await sleep(200);
    }
    return instance;
  }

  constructor(child, http, metricsToken) {
    this.child = child;
    this.pid = child.pid;
    this.http = http;
    this.metricsToken = metricsToken;
    this.logLines = 0;
    /** Warning and error log lines, by level and message. */
    this.warnings = {};
    this.warningLines = [];
  }

  /** Its /metrics, parsed; null when it does not answer within 30 s (the run says so). */
  async metrics() {
    try {
      const response = await fetch(`${this.http}/metrics`, {
        headers: { authorization: `Bearer ${this.metricsToken}` },
        signal: AbortSignal.timeout(30000),
      });
      return parseMetrics(await response.text());
    } catch {
      return null;
    }
  }

  stop() {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        resolve();
        return;
      }
      this.child.once('exit', resolve);
      this.child.kill('SIGKILL');
    });
  }
}

/** The figures read from /metrics: delivery-lag buckets by path, connections, disconnections. */
function parseMetrics(text) {
  const lag = { local: {}, remote: {} };
  for (const match of text.matchAll(/^ws_delivery_lag_seconds_bucket\{([^}]*)\} (\d+)/gm)) {
    const path = /path="(\w+)"/.exec(match[1])?.[1];
    const le = /le="([^"]+)"/.exec(match[1])?.[1];
    if ((path === 'local' || path === 'remote') && le !== undefined) {
      lag[path][le] = Number(match[2]);
    }
  }
  let active = 0;
  for (const match of text.matchAll(/^ws_connections_active(?:\{[^}]*\})? (\d+)/gm)) {
    active += Number(match[1]);
  }
  const disconnections = {};
  for (const match of text.matchAll(/^ws_disconnections_total\{([^}]*)\} (\d+)/gm)) {
    const code = /code="([^"]*)"/.exec(match[1])?.[1] ?? '?';
    disconnections[code] = (disconnections[code] ?? 0) + Number(match[2]);
  }
  return { lag, active, disconnections };
}

/** The delivery-lag buckets observed between two scrapes of every instance, merged by path. */
function lagDelta(before, after) {
  const merged = { local: {}, remote: {} };
  after.forEach((metrics, i) => {
    if (metrics === null || before[i] === null) {
      return;
    }
    for (const path of ['local', 'remote']) {
      for (const [le, count] of Object.entries(metrics.lag[path])) {
        merged[path][le] = (merged[path][le] ?? 0) + count - (before[i].lag[path][le] ?? 0);
      }
    }
  });
  return merged;
}

/**
 * A quantile of cumulative Prometheus buckets (`{ le: count }`), as `histogram_quantile` reads
 * it (linear within the bucket), and the bucket's upper bound, which is all the metric proves.
 */
function bucketQuantile(buckets, q) {
  const bounds = Object.entries(buckets)
    .map(([le, count]) => [le === '+Inf' ? Infinity : Number(le), count])
    .sort(([a], [b]) => a - b);
  const total = bounds.at(-1)?.[1] ?? 0;
  if (total === 0) {
    return { count: 0, estimate: NaN, bound: NaN };
  }
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of bounds) {
    if (count >= rank) {
      const estimate =
        le === Infinity ? lower : lower + ((le - lower) * (rank - below)) / (count - below || 1);
      return { count: total, estimate, bound: le };
    }
    lower = le;
    below = count;
  }
  return { count: total, estimate: NaN, bound: NaN };
}

function mergeBuckets(...histograms) {
  const merged = {};
  for (const histogram of histograms) {
    for (const [le, count] of Object.entries(histogram)) {
      merged[le] = (merged[le] ?? 0) + count;
    }
  }
  return merged;
}

// ---------------------------------------------------------------------------------------------
// load workers

class Workers {
  static start(count, addresses, secret, fds) {
    return new Workers(count, addresses, secret, fds);
  }

  constructor(count, addresses, secret, fds) {
    this.pending = new Map();
    this.seq = 0;
    this.children = Array.from({ length: count }, (_, i) => {
      const child = track(
        spawnNode(
          [join(here, 'scale-worker.mjs')],
          {
            env: {
              PATH: process.env.PATH,
              LOCAL_ADDRESS: addresses[i % addresses.length],
              JWT_SECRET: secret,
            },
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          },
          fds,
        ),
      );
      child.on('message', ({ id, result }) => {
        this.pending.get(id)?.resolve(result);
        this.pending.delete(id);
      });
      child.once('exit', (code, signal) => {
        for (const [id, call] of this.pending) {
          if (call.worker === i) {
            call.reject(new Error(`load worker ${i} exited (${code ?? signal})`));
            this.pending.delete(id);
          }
        }
      });
      return child;
    });
  }

  call(worker, cmd, args = {}) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      this.children[worker].send({ id, cmd, args });
    });
  }

  all(cmd, args) {
    return Promise.all(
      this.children.map((_, i) => this.call(i, cmd, typeof args === 'function' ? args(i) : args)),
    );
  }

  cpu() {
    return sum(this.children.map((child) => proc(child.pid).cpu));
  }

  rss() {
    return sum(this.children.map((child) => proc(child.pid).rss));
  }

  stop() {
    this.children.forEach((child) => child.kill('SIGKILL'));
  }
}

// ---------------------------------------------------------------------------------------------
// one run: N instances, a number of clients, a hold with broadcasts

/**
 * Starts `instances` instances on the cluster, connects `clients` spread over them, puts the
 * clients of every `roomEvery`-th round (one client per instance each) in ROOM, holds them for
 * `holdMs` while publishing `toAll` and `toRoom` in turn every `broadcastGapMs` (on each instance
 * in turn), and measures it all. `sampleMs`: how often the hold is sampled (open sockets, RSS,
 * load average).
 */
async function runOnce(
  ctx,
  { label, instances: count, clients, holdMs, broadcastGapMs, sampleMs },
) {
  const { size, cluster, secret, apiKey, metricsToken, plan, dist } = ctx;
  const log = (line) => console.log(`[scale ${label}] ${line}`);
  const env = {
    NODE_ENV: 'production',
    JWT_SECRET: secret,
    ALLOWED_ORIGINS: 'http://bench.invalid',
    BROADCAST_API_KEY: apiKey,
    METRICS_TOKEN: metricsToken,
    LOG_LEVEL: 'info',
    REDIS_URL: cluster.url,
    REDIS_MODE: 'cluster',
    REDIS_PREFIX: `scale${randomBytes(3).toString('hex')}:`,
    // An instance holds at most what its open files allow: past it, a clean 503 instead of EMFILE.
    MAX_CONNECTIONS: String(plan.perInstance),
    MAX_CONNECTIONS_PER_IP: String(plan.perInstance),
    CONNECT_ATTEMPTS_PER_MINUTE: '20',
    WS_HEARTBEAT_MS: String(size.heartbeatMs),
  };
  const workers = ctx.workers;
  const started = now();
  const servers = await Promise.all(
    Array.from({ length: count }, () => Instance.start(dist, env, plan.openFiles.children)),
  );
  log(`${count} instance(s) ready after ${((now() - started) / 1000).toFixed(1)} s`);
  const loads = [];
  const sampleLoad = () => loads.push(loadavg()[0]);
  try {
    const redisPids = cluster.nodes.map((node) => node.pid);
    const cpuOf = () => ({
      servers: servers.map((server) => proc(server.pid).cpu),
      redis: redisPids.map((pid) => proc(pid).cpu),
      driver: workers.cpu(),
      at: performance.now(),
    });
    const spent = (from, to) => ({
      servers: sum(to.servers) - sum(from.servers),
      perServer: to.servers.map((cpu, i) => cpu - from.servers[i]),
      redis: to.redis.map((cpu, i) => cpu - from.redis[i]),
      driver: to.driver - from.driver,
      seconds: (to.at - from.at) / 1000,
    });
    // The instances' own idle cost, with no client yet: subtracted from the hold's.
    await sleep(1000);
    const base0 = cpuOf();
    await sleep(size.baselineMs);
    const baseline = spent(base0, cpuOf());
    const rssBefore = servers.map((server) => proc(server.pid).rss);
    const driverRssBefore = workers.rss();
    const redisMemoryBefore = await redisMemory(cluster);
    const memBefore = memAvailable();
    const tcpBefore = tcpSockets();
    sampleLoad();

    // Connect.
    log(
      `connecting ${clients.toLocaleString('en-US')} clients (${workers.children.length} load workers)`,
    );
    const targets = servers.map((server) => server.http);
    const share = Math.ceil(clients / workers.children.length);
    const prefix = `s${randomBytes(3).toString('hex')}-`;
    const cpuConnect0 = cpuOf();
    let connecting = true;
    const connectStart = now();
    const progress = (async () => {
      while (connecting) {
        await sleep(Math.max(sampleMs, 5000));
        if (connecting) {
          sampleLoad();
          const status = await workers.all('status');
          log(
            `  ${sum(status.map((s) => s.clients)).toLocaleString('en-US')} connected after ` +
              `${((now() - connectStart) / 1000).toFixed(0)} s, load ${loadavg()[0].toFixed(1)}`,
          );
        }
      }
    })().catch(() => undefined); // the workers gone: the run failed, and says so elsewhere
    const connected = await workers.all('connect', (i) => ({
      targets,
      count: Math.max(0, Math.min(share, clients - i * share)),
      first: i * share,
      prefix,
      concurrency: size.concurrency,
      timeoutMs: 30000,
      attempts: 8,
      boundMs: size.connectBoundMs,
      auth: ctx.auth,
    }));
    connecting = false;
    void progress; // it ends at its next tick, without delaying the figures
    const cpuConnect1 = cpuOf();
    const connect = spent(cpuConnect0, cpuConnect1);
    const ok = sum(connected.map((r) => r.ok));
    const connectLatencies = connected.flatMap((r) => r.latencies);
    const retries = mergeHistograms(connected.map((r) => r.retries));
    log(
      `${ok} connected, ${sum(connected.map((r) => r.failed))} failed, in ` +
        `${connect.seconds.toFixed(0)} s; retried: ${JSON.stringify(retries)}`,
    );

    // The room: one client per instance in every roomEvery-th round.
    const joined = await workers.all('join', {
      room: ROOM,
      every: size.roomEvery,
      spreadMs: size.joinSpreadMs,
      timeoutMs: 30000,
    });
    await sleep(Math.min(2000, size.joinSpreadMs));
    const census0 = await workers.all('status');
    const members = sum(census0.flatMap((s) => Object.values(s.members)));
    const afterConnect = {
      rss: servers.map((server) => proc(server.pid).rss),
      driverRss: workers.rss(),
      redisMemory: await redisMemory(cluster),
      mem: memAvailable(),
      tcp: tcpSockets(),
    };
    const perInstance = servers.map((_, i) => sum(census0.map((s) => s.open[i] ?? 0)));
    log(
      `${members} in the room, on instances: ${servers.map((_, i) => sum(census0.map((s) => s.members[i] ?? 0))).join(' / ')}`,
    );
    await workers.all('resetLag');
    const pings0 = sum(census0.map((st) => st.pings));

    // Hold, with a broadcast every broadcastGapMs: toAll and toRoom in turn.
    const metrics0 = await Promise.all(servers.map((server) => server.metrics()));
    const redisBefore = await redisInfo(cluster);
    const cpuHold0 = cpuOf();
    const holdStart = performance.now();
    const broadcasts = [];
    const samples = [];
    let idle = { servers: 0, redis: redisPids.map(() => 0), driver: 0, seconds: 0 };
    let idleFrom = cpuOf();
    let n = 0;
    let lastSample = 0;
    log(`holding for ${(holdMs / 1000).toFixed(0)} s`);
    while (performance.now() - holdStart < holdMs) {
      const nextAt = holdStart + (n + 1) * broadcastGapMs;
      while (performance.now() < Math.min(nextAt, holdStart + holdMs)) {
        if (performance.now() - lastSample >= sampleMs) {
          lastSample = performance.now();
          sampleLoad();
          const status = await workers.all('status');
          samples.push({
            s: (performance.now() - holdStart) / 1000,
            open: sum(status.flatMap((st) => Object.values(st.open))),
            drops: sum(status.map((st) => st.drops)),
            rss: servers.map((server) => proc(server.pid).rss),
            ready: await Promise.all(servers.map(readiness)),
            load: loadavg()[0],
          });
        }
        await sleep(
          Math.min(250, Math.max(0, Math.min(nextAt, holdStart + holdMs) - performance.now())),
        );
      }
      if (performance.now() - holdStart >= holdMs) {
        break;
      }
      // The idle window ends here: what holding the sockets costs, heartbeats included.
      const idleTo = cpuOf();
      const window = spent(idleFrom, idleTo);
      idle = {
        servers: idle.servers + window.servers,
        redis: idle.redis.map((cpu, i) => cpu + window.redis[i]),
        driver: idle.driver + window.driver,
        seconds: idle.seconds + window.seconds,
      };
      const kind = n % 2 === 0 ? 'all' : 'room';
      const publisher = servers[n % servers.length];
      const status = await workers.all('status');
      const expected =
        kind === 'all'
          ? sum(status.flatMap((st) => Object.values(st.open)))
          : sum(status.flatMap((st) => Object.values(st.members)));
      const before = await Promise.all(servers.map((server) => server.metrics()));
      const cpu0 = cpuOf();
      const result = await broadcast(workers, publisher, apiKey, kind, n, expected);
      const cpu = spent(cpu0, cpuOf());
      const after = await Promise.all(servers.map((server) => server.metrics()));
      broadcasts.push({ ...result, kind, n, expected, lag: lagDelta(before, after), cpu });
      log(
        `  ${kind === 'all' ? 'toAll ' : 'toRoom'} #${n} on instance ${n % servers.length}: ` +
          (result.refused !== undefined ? `REFUSED ${result.refused}; received anyway: ` : '') +
          `${result.received}/${expected} in ${format(result.lastMs)} ms (client p99 ` +
          `${format(result.p99)} ms)` +
          `, load ${loadavg()[0].toFixed(1)}`,
      );
      n += 1;
      idleFrom = cpuOf();
    }
    const idleTail = spent(idleFrom, cpuOf());
    idle = {
      servers: idle.servers + idleTail.servers,
      redis: idle.redis.map((cpu, i) => cpu + idleTail.redis[i]),
      driver: idle.driver + idleTail.driver,
      seconds: idle.seconds + idleTail.seconds,
    };
    const hold = spent(cpuHold0, cpuOf());
    const metrics1 = await Promise.all(servers.map((server) => server.metrics()));
    const end = await workers.all('status');
    sampleLoad();
    const rssEnd = servers.map((server) => proc(server.pid).rss);
    const openEnd = sum(end.flatMap((s) => Object.values(s.open)));
    const drops = sum(end.map((s) => s.drops));
    const dropCodes = mergeHistograms(end.map((s) => s.dropCodes));
    const disconnections = {};
    metrics1.forEach((metrics, i) => {
      if (metrics === null || metrics0[i] === null) {
        return;
      }
      for (const [code, count] of Object.entries(metrics.disconnections)) {
        const delta = count - (metrics0[i].disconnections[code] ?? 0);
        if (delta > 0) {
          disconnections[code] = (disconnections[code] ?? 0) + delta;
        }
      }
    });
    const serverActive = sum(metrics1.map((m) => m?.active ?? NaN));
    const redisAfter = await redisInfo(cluster);

    // A broadcast's own CPU: its window's, less what idling costs over as long.
    const idleRate = {
      servers: idle.servers / Math.max(1e-9, idle.seconds),
      redis: sum(idle.redis) / Math.max(1e-9, idle.seconds),
      driver: idle.driver / Math.max(1e-9, idle.seconds),
    };
    for (const b of broadcasts) {
      b.net = {
        servers: Math.max(0, b.cpu.servers - idleRate.servers * b.cpu.seconds),
        redis: Math.max(0, sum(b.cpu.redis) - idleRate.redis * b.cpu.seconds),
        driver: Math.max(0, b.cpu.driver - idleRate.driver * b.cpu.seconds),
      };
    }
    const byKind = (kind) => broadcasts.filter((b) => b.kind === kind);
    const kindFigures = (kind) => {
      const list = byKind(kind);
      const lag = {
        local: mergeBuckets(...list.map((b) => b.lag.local)),
        remote: mergeBuckets(...list.map((b) => b.lag.remote)),
      };
      const delivered = sum(list.map((b) => b.received));
      return {
        count: list.length,
        refused: list
          .filter((b) => b.refused !== undefined)
          .map((b) => `#${b.n}: ${b.refused}, yet received by ${b.received} of ${b.expected}`),
        complete: list.filter(
          (b) => b.refused === undefined && b.received === b.expected && b.dups === 0,
        ).length,
        expected: sum(list.map((b) => b.expected)),
        received: delivered,
        dups: sum(list.map((b) => b.dups)),
        lastMsMax: Math.max(...list.map((b) => b.lastMs).filter(Number.isFinite)),
        lastMsMedian: median(list.map((b) => b.lastMs)),
        clientP50: histogramPercentile(mergeHistograms(list.map((b) => b.histogram)), 50),
        clientP99: histogramPercentile(mergeHistograms(list.map((b) => b.histogram)), 99),
        lagP99: {
          local: bucketQuantile(lag.local, 0.99),
          remote: bucketQuantile(lag.remote, 0.99),
          all: bucketQuantile(mergeBuckets(lag.local, lag.remote), 0.99),
        },
        lagBuckets: lag,
        serverCpuUsPerDelivery:
          (sum(list.map((b) => b.net.servers)) * 1e6) / Math.max(1, delivered),
        driverCpuUsPerDelivery: (sum(list.map((b) => b.net.driver)) * 1e6) / Math.max(1, delivered),
        redisCpuMsPerBroadcast:
          (sum(list.map((b) => b.net.redis)) * 1000) / Math.max(1, list.length),
      };
    };
    const delivery = { all: kindFigures('all'), room: kindFigures('room') };
    const rssPerConnection = perInstance.map((conns, i) =>
      conns > 0 ? (afterConnect.rss[i] - rssBefore[i]) / conns : NaN,
    );
    const rssPerConnectionEnd = perInstance.map((conns, i) =>
      conns > 0 ? (rssEnd[i] - rssBefore[i]) / conns : NaN,
    );
    const result = {
      label,
      instances: count,
      clients,
      connected: ok,
      connectFailed: sum(connected.map((r) => r.failed)),
      connectRetries: retries,
      connectSeconds: connect.seconds,
      connectsPerSecond: ok / connect.seconds,
      connectP50Ms: percentile(connectLatencies, 50),
      connectP99Ms: percentile(connectLatencies, 99),
      perInstance,
      room: {
        members,
        joined: sum(joined.map((j) => j.joined)),
        refused: mergeHistograms(joined.map((j) => j.refused)),
        unanswered: sum(joined.map((j) => j.unanswered)),
      },
      cpuPerConnectMs: {
        servers: (connect.servers * 1000) / Math.max(1, ok),
        redis: (sum(connect.redis) * 1000) / Math.max(1, ok),
        driver: (connect.driver * 1000) / Math.max(1, ok),
      },
      hold: {
        seconds: hold.seconds,
        openAtEnd: openEnd,
        serverActiveAtEnd: serverActive,
        minOpen: Math.min(ok, ...samples.map((s) => s.open)),
        drops,
        dropCodes,
        heartbeatPings: sum(end.map((st) => st.pings)) - pings0,
        serverDisconnections: disconnections,
        redisBefore,
        redisAfter,
        redisConnectionsDuring: redisAfter.map(
          // less the INFO's own connection (redis-cli)
          (info, i) => info.connectionsReceived - redisBefore[i].connectionsReceived - 1,
        ),
        notReadySamples: samples.filter((sample) => sample.ready.some((r) => r !== 200)).length,
        instanceWarnings: servers.map((server) => server.warnings),
        instanceWarningLines: servers.map((server) => server.warningLines),
        instanceLogLines: servers.map((server) => server.logLines),
        driverMaxLagMs: Math.max(...end.map((s) => s.maxLagMs)),
        driverStalls: sum(end.map((s) => s.stalls)),
        otherFrames: mergeHistograms(end.map((s) => s.otherFrames)),
        cpuSeconds: {
          servers: hold.servers,
          redis: hold.redis,
          driver: hold.driver,
        },
      },
      idle: {
        seconds: idle.seconds,
        serverCpuMsPerSecond: (idle.servers * 1000) / Math.max(1e-9, idle.seconds),
        serverBaselineCpuMsPerSecond: (baseline.servers * 1000) / Math.max(1e-9, baseline.seconds),
        // Per 1,000 sockets: the hold's idle rate less the instances' own with no client.
        serverCpuMsPerSecondPer1k:
          ((idle.servers / Math.max(1e-9, idle.seconds) -
            baseline.servers / Math.max(1e-9, baseline.seconds)) *
            1000) /
          Math.max(1e-9, ok / 1000),
        redisCpuMsPerSecond: idle.redis.map((cpu) => (cpu * 1000) / Math.max(1e-9, idle.seconds)),
        driverCpuMsPerSecond: (idle.driver * 1000) / Math.max(1e-9, idle.seconds),
      },
      memory: {
        rssBefore,
        rssAfterConnect: afterConnect.rss,
        rssEnd,
        rssKiBPerConnection: rssPerConnection.map((bytes) => bytes / 1024),
        rssKiBPerConnectionEnd: rssPerConnectionEnd.map((bytes) => bytes / 1024),
        driverKiBPerClient: (afterConnect.driverRss - driverRssBefore) / 1024 / Math.max(1, ok),
        redisUsedKiBPerConnection:
          (sum(afterConnect.redisMemory) - sum(redisMemoryBefore)) / 1024 / Math.max(1, ok),
        kernelTcpKiBPerConnection:
          (afterConnect.tcp.memBytes - tcpBefore.memBytes) / 1024 / Math.max(1, ok),
        machineKiBPerConnection: (memBefore - afterConnect.mem) / 1024 / Math.max(1, ok),
        memAvailableBefore: memBefore,
        memAvailableAfter: afterConnect.mem,
        tcpBefore,
        tcpAfter: afterConnect.tcp,
      },
      delivery,
      broadcasts,
      samples,
      load: {
        atStart: loads[0],
        max: Math.max(...loads),
        mean: sum(loads) / loads.length,
        atEnd: loads.at(-1),
      },
      wallSeconds: (now() - started) / 1000,
    };
    return result;
  } finally {
    // Clients first, with resets (no TIME_WAIT on the client ports), then the instances.
    await workers.all('close').catch(() => undefined);
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/**
 * Publishes one `scale.<kind>` event on `publisher` (`toAll`, or `toRoom` of ROOM) through the
 * HTTP API, and waits until `expected` clients got it or 30 s passed: who got it, duplicates,
 * and receipt − publish (ms) as the clients saw it.
 */
async function broadcast(workers, publisher, apiKey, kind, n, expected) {
  const key = `${kind}:${n}`;
  const t = now();
  const response = await fetch(`${publisher.http}/api/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      to: kind === 'all' ? { all: true } : { room: ROOM },
      event: `scale.${kind}`,
      data: { k: kind, n, t },
    }),
  });
  // Refused (a 503: the instance found its Redis link down, or the publish timed out): what the
  // clients got anyway is still counted, over a shorter wait, since a timed-out publish may have
  // gone out.
  const refused =
    response.status === 202 ? undefined : `${response.status} ${await response.text()}`;
  const deadline = Date.now() + (refused === undefined ? 30000 : 10000);
  let status;
  do {
    await sleep(100);
    status = await workers.all('status', { keys: [key] });
  } while (sum(status.map((s) => s.receipts[key]?.count ?? 0)) < expected && Date.now() < deadline);
  await sleep(200); // duplicates, if any, come right after
  status = await workers.all('status', { keys: [key] });
  const entries = status.map((s) => s.receipts[key]).filter(Boolean);
  const histogram = mergeHistograms(entries.map((e) => e.ms));
  return {
    refused,
    received: sum(entries.map((e) => e.count)),
    dups: sum(entries.map((e) => e.dups)),
    lastMs: entries.length > 0 ? Math.max(...entries.map((e) => e.last)) - t : NaN,
    p50: histogramPercentile(histogram, 50),
    p99: histogramPercentile(histogram, 99),
    histogram,
  };
}

/** /health/ready of an instance: its status, or why there was none within 5 s. */
async function readiness(server) {
  try {
    const response = await fetch(`${server.http}/health/ready`, {
      signal: AbortSignal.timeout(5000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    return error.name === 'TimeoutError' ? 'timeout' : 'error';
  }
}

/** Each master's connection figures (`INFO clients` and `INFO stats`). */
async function redisInfo(cluster) {
  return Promise.all(
    cluster.nodes.map(async (node) => {
      const { stdout } = await run('redis-cli', ['-p', String(node.port), 'INFO', 'everything']);
      const field = (name) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(stdout)?.[1] ?? NaN);
      return {
        connectedClients: field('connected_clients'),
        connectionsReceived: field('total_connections_received'),
        rejectedConnections: field('rejected_connections'),
        outputBufferDisconnections: field('client_output_buffer_limit_disconnections'),
        pubsubShardChannels: field('pubsubshard_channels'),
        usedMemory: field('used_memory'),
      };
    }),
  );
}

/** Each master's `used_memory`, bytes. */
async function redisMemory(cluster) {
  return Promise.all(
    cluster.nodes.map(async (node) => {
      const { stdout } = await run('redis-cli', ['-p', String(node.port), 'INFO', 'memory']);
      return Number(/used_memory:(\d+)/.exec(stdout)[1]);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// the projection: what N instances would hold

/**
 * From the curve's per-connection costs: what one instance holds under each of its own limits
 * (open files; a `toAll` written within 2 s by its one thread; memory), and what this machine
 * holds under its shared ones (client ports, memory, CPU for heartbeats and a `toAll` in 2 s).
 */
function project(curve, plan) {
  const last = curve.at(-1);
  const serverUs = median(curve.map((step) => step.delivery.all.serverCpuUsPerDelivery));
  const driverUs = median(curve.map((step) => step.delivery.all.driverCpuUsPerDelivery));
  const rssKiB = median(curve.flatMap((step) => step.memory.rssKiBPerConnection));
  const machineKiB = median(curve.map((step) => step.memory.machineKiBPerConnection));
  const idleServerMs = median(curve.map((step) => step.idle.serverCpuMsPerSecondPer1k));
  const cores = cpus().length;
  const perInstance = {
    'open files (MAX_CONNECTIONS set under the limit)': plan.perInstance,
    'its thread writes a toAll within 2 s': Math.floor(2 / (serverUs / 1e6)),
    'its thread spends ≤ 50 % of a core on idle sockets (heartbeats)': Math.floor(
      (500 / idleServerMs) * 1000,
    ),
  };
  const instanceCap = Math.min(...Object.values(perInstance));
  const instanceLimit = Object.entries(perInstance).find(([, cap]) => cap === instanceCap)[0];
  const machine = {
    [`client ports (${plan.addresses.length} source addresses)`]: plan.clientPorts,
    'memory (whole machine per connection: servers, driver, kernel)': Math.floor(
      last.memory.memAvailableBefore / (machineKiB * 1024),
    ),
    [`${cores} cores: a toAll written and read within 2 s (servers + driver CPU)`]: Math.floor(
      (2 * cores) / ((serverUs + driverUs) / 1e6),
    ),
  };
  const machineCap = Math.min(...Object.values(machine));
  const machineLimit = Object.entries(machine).find(([, cap]) => cap === machineCap)[0];
  const rows = [1, 2, 4, 6, 8, 12].map((n) => ({
    instances: n,
    ownCores: n * instanceCap,
    thisMachine: Math.min(n * instanceCap, machineCap),
  }));
  return {
    costs: {
      serverUsPerDelivery: serverUs,
      driverUsPerDelivery: driverUs,
      rssKiB,
      machineKiB,
      idleServerMs,
    },
    perInstance,
    instanceCap,
    instanceLimit,
    machine,
    machineCap,
    machineLimit,
    rows,
  };
}

const median = (values) => percentile(values.filter(Number.isFinite), 50);

// ---------------------------------------------------------------------------------------------
// tables

function printCurve(curve) {
  console.log(
    `\n### scale: cost curve (${curve[0].clients / curve[0].instances} clients per instance, ` +
      `${curve[0].hold.seconds.toFixed(0)} s hold each)\n`,
  );
  const rows = [
    ['clients connected', (s) => s.connected],
    ['connect failures', (s) => s.connectFailed],
    ['connects/s', (s) => s.connectsPerSecond],
    ['server CPU ms per connect (all instances)', (s) => s.cpuPerConnectMs.servers],
    ['Redis CPU ms per connect (3 masters)', (s) => s.cpuPerConnectMs.redis],
    ['driver CPU ms per connect', (s) => s.cpuPerConnectMs.driver],
    [
      'server RSS KiB per connection (median of instances)',
      (s) => median(s.memory.rssKiBPerConnection),
    ],
    ['driver RSS KiB per client', (s) => s.memory.driverKiBPerClient],
    ['Redis used_memory KiB per connection', (s) => s.memory.redisUsedKiBPerConnection],
    ['machine MemAvailable KiB per connection', (s) => s.memory.machineKiBPerConnection],
    ['idle server CPU ms/s per 1,000 connections', (s) => s.idle.serverCpuMsPerSecondPer1k],
    ['idle Redis CPU ms/s (3 masters)', (s) => sum(s.idle.redisCpuMsPerSecond)],
    ['idle driver CPU ms/s', (s) => s.idle.driverCpuMsPerSecond],
    ['drops during the hold', (s) => s.hold.drops],
    [
      'toAll: all reached (broadcasts complete / sent)',
      (s) => `${s.delivery.all.complete}/${s.delivery.all.count}`,
    ],
    ['toAll: last receipt ms, max', (s) => s.delivery.all.lastMsMax],
    ['toAll: client p99 ms', (s) => s.delivery.all.clientP99],
    ['toAll: ws_delivery_lag_seconds p99 ms (bucket ≤)', (s) => lagCell(s.delivery.all.lagP99.all)],
    ['toRoom: all reached', (s) => `${s.delivery.room.complete}/${s.delivery.room.count}`],
    ['toRoom: last receipt ms, max', (s) => s.delivery.room.lastMsMax],
    [
      'toRoom: ws_delivery_lag_seconds p99 ms (bucket ≤)',
      (s) => lagCell(s.delivery.room.lagP99.all),
    ],
    ['server CPU µs per toAll delivery', (s) => s.delivery.all.serverCpuUsPerDelivery],
    ['driver CPU µs per toAll receipt', (s) => s.delivery.all.driverCpuUsPerDelivery],
    ['Redis CPU ms per toAll', (s) => s.delivery.all.redisCpuMsPerBroadcast],
    ['Redis CPU ms per toRoom', (s) => s.delivery.room.redisCpuMsPerBroadcast],
    ['load average (1 min), max', (s) => s.load.max],
  ];
  console.log(
    `| figure | ${curve.map((s) => `${s.instances} instance${s.instances > 1 ? 's' : ''}`).join(' | ')} |`,
  );
  console.log(`| --- | ${curve.map(() => '---:').join(' | ')} |`);
  for (const [name, value] of rows) {
    console.log(`| ${name} | ${curve.map((s) => format(value(s))).join(' | ')} |`);
  }
}

const lagCell = (q) =>
  q.count === 0 ? '–' : `${format(q.estimate * 1000)} (≤ ${format(q.bound * 1000)})`;

function printScale(s, plan) {
  console.log(
    `\n### scale: ${s.connected.toLocaleString('en-US')} connections, ${s.instances} instances, ` +
      `Redis Cluster of 3 masters, held ${(s.hold.seconds / 60).toFixed(1)} min\n`,
  );
  const figures = [
    [
      'clients asked / planned',
      `${plan.requested.toLocaleString('en-US')} / ${plan.planned.toLocaleString('en-US')}`,
    ],
    ['connected', s.connected],
    ['connect failures (after retries)', s.connectFailed],
    ['connect took s', s.connectSeconds],
    ['connects/s', s.connectsPerSecond],
    ['connect p50 / p99 ms', `${format(s.connectP50Ms)} / ${format(s.connectP99Ms)}`],
    ['per instance', s.perInstance.map(format).join(' / ')],
    ['room members (one client per instance in every round picked)', s.room.members],
    [
      'open at the end of the hold (clients / servers)',
      `${format(s.hold.openAtEnd)} / ${format(s.hold.serverActiveAtEnd)}`,
    ],
    ['fewest open during the hold', s.hold.minOpen],
    ['drops (client side)', s.hold.drops],
    ['samples with an instance not ready (/health/ready)', s.hold.notReadySamples],
    [
      'Redis connections opened during the hold, per master',
      s.hold.redisConnectionsDuring.map(format).join(' / '),
    ],
    [
      'instance warnings and errors logged (whole run)',
      JSON.stringify(mergeHistograms(s.hold.instanceWarnings)).replace(/\|/g, '/'),
    ],
    [
      'refused broadcasts',
      [...s.delivery.all.refused, ...s.delivery.room.refused].join('; ').replace(/\|/g, '/') ||
        'none',
    ],
    ['heartbeat pings answered during the hold', s.hold.heartbeatPings],
    ['server disconnections during the hold, by code', JSON.stringify(s.hold.serverDisconnections)],
    [
      'toAll: broadcasts that reached every client / sent',
      `${s.delivery.all.complete}/${s.delivery.all.count}`,
    ],
    [
      'toAll: received / expected',
      `${format(s.delivery.all.received)} / ${format(s.delivery.all.expected)}`,
    ],
    [
      'toAll: last client reached after ms, median / max',
      `${format(s.delivery.all.lastMsMedian)} / ${format(s.delivery.all.lastMsMax)}`,
    ],
    [
      'toAll: client p50 / p99 ms',
      `${format(s.delivery.all.clientP50)} / ${format(s.delivery.all.clientP99)}`,
    ],
    ['toAll: ws_delivery_lag_seconds p99 ms, local', lagCell(s.delivery.all.lagP99.local)],
    ['toAll: ws_delivery_lag_seconds p99 ms, remote', lagCell(s.delivery.all.lagP99.remote)],
    [
      'toRoom: broadcasts that reached every member / sent',
      `${s.delivery.room.complete}/${s.delivery.room.count}`,
    ],
    [
      'toRoom: last member reached after ms, median / max',
      `${format(s.delivery.room.lastMsMedian)} / ${format(s.delivery.room.lastMsMax)}`,
    ],
    [
      'toRoom: client p50 / p99 ms',
      `${format(s.delivery.room.clientP50)} / ${format(s.delivery.room.clientP99)}`,
    ],
    ['toRoom: ws_delivery_lag_seconds p99 ms, local', lagCell(s.delivery.room.lagP99.local)],
    ['toRoom: ws_delivery_lag_seconds p99 ms, remote', lagCell(s.delivery.room.lagP99.remote)],
    [
      'server RSS KiB per connection after connect, per instance',
      s.memory.rssKiBPerConnection.map(format).join(' / '),
    ],
    [
      'server RSS KiB per connection at the end, per instance',
      s.memory.rssKiBPerConnectionEnd.map(format).join(' / '),
    ],
    [
      'server RSS MiB at the end, per instance',
      s.memory.rssEnd.map((b) => format(b / 2 ** 20)).join(' / '),
    ],
    ['driver RSS KiB per client', s.memory.driverKiBPerClient],
    ['Redis used_memory KiB per connection', s.memory.redisUsedKiBPerConnection],
    ['kernel TCP buffers KiB per connection', s.memory.kernelTcpKiBPerConnection],
    ['machine MemAvailable KiB per connection (everything)', s.memory.machineKiBPerConnection],
    ['server CPU ms per connect', s.cpuPerConnectMs.servers],
    ['Redis CPU ms per connect', s.cpuPerConnectMs.redis],
    ['driver CPU ms per connect', s.cpuPerConnectMs.driver],
    ['idle server CPU ms/s (all instances; heartbeats)', s.idle.serverCpuMsPerSecond],
    ['idle Redis CPU ms/s, per master', s.idle.redisCpuMsPerSecond.map(format).join(' / ')],
    ['idle driver CPU ms/s', s.idle.driverCpuMsPerSecond],
    ['Redis CPU s during the hold, per master', s.hold.cpuSeconds.redis.map(format).join(' / ')],
    [
      'Redis CPU ms per toAll / per toRoom',
      `${format(s.delivery.all.redisCpuMsPerBroadcast)} / ${format(s.delivery.room.redisCpuMsPerBroadcast)}`,
    ],
    ['server CPU µs per toAll delivery', s.delivery.all.serverCpuUsPerDelivery],
    [
      'driver loop lag max ms / stalls ≥ 1 s',
      `${format(s.hold.driverMaxLagMs)} / ${s.hold.driverStalls}`,
    ],
    [
      'load average (1 min): start / mean / max / end',
      `${format(s.load.atStart)} / ${format(s.load.mean)} / ${format(s.load.max)} / ${format(s.load.atEnd)}`,
    ],
  ];
  console.log('| figure | value |');
  console.log('| --- | ---: |');
  for (const [name, value] of figures) {
    console.log(`| ${name} | ${format(value)} |`);
  }
}

function printProjection(p) {
  console.log('\n### scale: what N instances would hold\n');
  console.log(
    `Per-connection costs from the curve (medians): server ${format(p.costs.serverUsPerDelivery)} µs ` +
      `CPU per toAll delivery, driver ${format(p.costs.driverUsPerDelivery)} µs per receipt, ` +
      `server RSS ${format(p.costs.rssKiB)} KiB, whole machine ${format(p.costs.machineKiB)} KiB.\n`,
  );
  console.log('| one instance, bounded by | connections |');
  console.log('| --- | ---: |');
  for (const [name, cap] of Object.entries(p.perInstance)) {
    console.log(`| ${name} | ${format(cap)} |`);
  }
  console.log('\n| this machine, bounded by | connections |');
  console.log('| --- | ---: |');
  for (const [name, cap] of Object.entries(p.machine)) {
    console.log(`| ${name} | ${format(cap)} |`);
  }
  console.log('\n| instances | each on its own core | on this machine |');
  console.log('| ---: | ---: | ---: |');
  for (const row of p.rows) {
    console.log(`| ${row.instances} | ${format(row.ownCores)} | ${format(row.thisMachine)} |`);
  }
  console.log(
    `\nOne instance: ${format(p.instanceCap)} (${p.instanceLimit}); this machine: ` +
      `${format(p.machineCap)} (${p.machineLimit}).`,
  );
}

// ---------------------------------------------------------------------------------------------
// the scenario

/**
 * Runs the curve (unless `curve: false`) and the scale run, prints their tables, and answers the
 * results. `quick`: the small sizes (under two minutes). Cleans up everything it started, also
 * when it fails or is interrupted; gives up after the size's bound.
 */
export async function scale({
  quick = false,
  dist = join(root, 'dist'),
  clients,
  holdMs,
  curve: withCurve = true,
  auth = 'ticket',
  addresses = 4,
} = {}) {
  const size = { ...(quick ? SIZES.quick : SIZES.full) };
  if (clients > 0) {
    size.clients = clients;
  }
  if (holdMs > 0) {
    size.holdMs = holdMs;
  }
  if (!existsSync(join(dist, 'main.js'))) {
    throw new Error(`${join(dist, 'main.js')} is missing: npm run build first`);
  }
  const plan = limits(size.clients, size.instances, addressList(addresses));
  const secret = randomBytes(32).toString('base64url');
  const ctx = {
    size,
    plan,
    dist,
    secret,
    apiKey: randomBytes(32).toString('base64url'),
    metricsToken: randomBytes(24).toString('base64url'),
    auth,
    cluster: null,
    workers: null,
  };
  console.log(
    `scale${quick ? ' (quick)' : ''}: ${size.clients.toLocaleString('en-US')} clients over ` +
      `${size.instances} instances, hold ${size.holdMs / 1000} s, ${auth === 'bearer' ? 'Bearer JWT at the upgrade' : 'a ticket each'}; ${cpus().length} cores, ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    `limits: open files ${plan.openFiles.soft} soft / ${plan.openFiles.hard} hard per process ` +
      `(children: ${plan.openFiles.children}${plan.openFiles.raised ? ', raised' : ''}), ports ` +
      `${plan.portRange} × ${plan.addresses.length} addresses = ${plan.clientPorts.toLocaleString('en-US')} ` +
      `client ports (${PORT_RESERVE} kept free per address); ≤ ${plan.perInstance} per instance, ` +
      `${plan.workers} load workers; planned ${plan.planned.toLocaleString('en-US')} (limit: ${plan.limitedBy})`,
  );

  const onSignal = (signal) => {
    console.error(`\nscale: ${signal}, stopping everything it started`);
    killAll();
    ctx.cluster?.stop();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.once('exit', killAll);
  let bound;
  const results = {
    date: new Date().toISOString(),
    quick,
    dist,
    machine: {
      cores: cpus().length,
      memGiB: totalmem() / 2 ** 30,
      node: process.version,
      loadavg: loadavg(),
    },
    sizes: size,
    auth,
    limits: plan,
    curve: [],
  };
  try {
    const work = (async () => {
      ctx.cluster = await startRedisCluster();
      ctx.workers = Workers.start(plan.workers, plan.addresses, secret, plan.openFiles.children);
      if (withCurve) {
        for (const instances of size.curve.steps) {
          results.curve.push(
            await runOnce(ctx, {
              label: `curve ${instances}`,
              instances,
              clients: instances * size.curve.perInstance,
              holdMs: size.curve.holdMs,
              broadcastGapMs: size.curve.broadcastGapMs,
              sampleMs: 2000,
            }),
          );
        }
        printCurve(results.curve);
        results.projection = project(results.curve, plan);
        printProjection(results.projection);
      }
      results.scale = await runOnce(ctx, {
        label: 'run',
        instances: size.instances,
        clients: plan.planned,
        holdMs: size.holdMs,
        broadcastGapMs: size.broadcastGapMs,
        sampleMs: quick ? 2000 : 10000,
      });
      printScale(results.scale, plan);
      results.verdicts = verdicts(results.scale, plan);
    })();
    await Promise.race([
      work,
      new Promise((_, reject) => {
        bound = setTimeout(
          () => reject(new Error(`scale: bounded out after ${size.boundMs / 1000} s`)),
          size.boundMs,
        );
      }),
    ]);
  } catch (error) {
    // What was measured before it failed goes with the error (written to the JSON on its own).
    results.error = String(error.stack ?? error);
    error.results = results;
    throw error;
  } finally {
    clearTimeout(bound);
    ctx.workers?.stop();
    ctx.cluster?.stop();
    killAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAll);
  }
  results.machine.loadavgAtEnd = loadavg();
  return results;
}

/** The targets of issue 26, MET or MISSED, printed and answered. */
function verdicts(s, plan) {
  const verdict = (ok) => (ok ? 'MET' : 'MISSED');
  const lagAll = Math.max(s.delivery.all.lagP99.all.estimate, s.delivery.room.lagP99.all.estimate);
  const lagBound = Math.max(s.delivery.all.lagP99.all.bound, s.delivery.room.lagP99.all.bound);
  const list = {
    [`${plan.requested.toLocaleString('en-US')} connected`]: s.connected >= plan.requested,
    'no drop for the hold': s.hold.drops === 0 && s.hold.openAtEnd === s.connected,
    'every toAll reached every client': s.delivery.all.complete === s.delivery.all.count,
    'every toRoom reached every member': s.delivery.room.complete === s.delivery.room.count,
    'ws_delivery_lag_seconds p99 ≤ 2 s (interpolated)': lagAll <= 2,
    'ws_delivery_lag_seconds p99 ≤ 2 s (bucket bound)': lagBound <= 2,
    'every client reached within 2 s (client clock, last receipt)':
      Math.max(s.delivery.all.lastMsMax, s.delivery.room.lastMsMax) <= 2000,
  };
  console.log('');
  for (const [name, ok] of Object.entries(list)) {
    console.log(`${verdict(ok)}: ${name}`);
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// on its own: node bench/scale.mjs [--quick] …

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const value = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const write = (results) => {
    mkdirSync(join(here, 'results'), { recursive: true });
    const file = join(
      here,
      'results',
      `${results.date.replace(/[:.]/g, '-')}-scale${results.quick ? '-quick' : ''}.json`,
    );
    writeFileSync(file, JSON.stringify(results, null, 2));
    console.log(`\nEvery figure: ${file}`);
  };
  const results = await scale({
    quick: args.includes('--quick'),
    dist: value('--dist') ? resolve(value('--dist')) : join(root, 'dist'),
    clients: Number(value('--clients') ?? 0),
    holdMs: Number(value('--hold-s') ?? 0) * 1000,
    curve: !args.includes('--no-curve'),
    auth: value('--auth') ?? 'ticket',
    addresses: Number(value('--addresses') ?? 4),
  }).catch((error) => {
    if (error.results !== undefined) {
      write(error.results);
    }
    throw error;
  });
  write(results);
}
