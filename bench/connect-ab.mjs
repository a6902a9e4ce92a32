// npm run bench:connect-ab -- [--a dist/main.js] [--b <another build's main.js>] [--runs 4]
//   [--clients 6000] [--profile <dir>]
// A/B of the connect path alone: boots each build in embedded mode, connects `--clients` clients
// (ticket, then socket, then the welcome; 32 at a time, from this process) after a warm-up, and
// reads the server's CPU from /proc. The builds take turns, so drift on the machine hits both.
// Prints each run and the medians. With --profile, each server also writes a V8 CPU profile
// (open it in Chrome DevTools or summarize it with bench/profile-top.mjs).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name, fallback) =>
  args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback;
const builds = [option('a', join(root, 'dist', 'main.js')), option('b', undefined)]
  .filter(Boolean)
  .map((path) => resolve(path));
const runs = Number(option('runs', '4'));
const clients = Number(option('clients', '6000'));
const profileDir = option('profile', undefined);
const CONCURRENCY = 32;
const WARM_UP = 320;
const SECRET = randomBytes(32).toString('base64url');
const key = new TextEncoder().encode(SECRET);
const CLOCK_TICK_MS = 10; // /proc/<pid>/stat counts CPU in ticks of 1/100 s on Linux

async function freePort() {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

async function boot(main) {
  const port = await freePort();
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(port),
      NODE_ENV: 'production',
      JWT_SECRET: SECRET,
      ALLOWED_ORIGINS: 'http://bench.invalid',
      LOG_LEVEL: 'info',
      MAX_CONNECTIONS: '50000',
      MAX_CONNECTIONS_PER_IP: '50000',
      TICKETS_PER_MINUTE: '1000000',
      METRICS_TOKEN: SECRET,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((ready, fail) => {
    child.once('exit', (code) => fail(new Error(`${main} exited with ${code}`)));
    child.stdout.on('data', function listening(chunk) {
      if (/"url":"http/.test(chunk.toString())) {
        child.stdout.off('data', listening);
        child.stdout.resume();
        ready();
      }
    });
  });
  return { child, http: `http://127.0.0.1:${port}` };
}

async function run(main) {
  const { child, http } = await boot(main);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = [];
  const ticket = async (user) => {
    const token = await new SignJWT({ sub: user, sid: user })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(key);
    return new Promise((done, fail) => {
      const req = request(
        `${http}/auth/ws-ticket`,
        { method: 'POST', agent, headers: { authorization: `Bearer ${token}` } },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () =>
            res.statusCode === 201 ? done(JSON.parse(text).url) : fail(new Error(text)),
          );
        },
      );
      req.on('error', fail);
      req.end();
    });
  };
  const connect = async (user) => {
    const url = await ticket(user);
    await new Promise((done, fail) => {
      const socket = new WebSocket(url, { perMessageDeflate: false });
      socket.once('error', fail);
      socket.once('message', () => {
        sockets.push(socket);
        done();
      });
    });
  };
  const connectAll = async (first, count) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < count) {
          await connect(`u${first + next++}`);
        }
      }),
    );
  };
  try {
    await connectAll(1_000_000, WARM_UP);
    const before = cpuMs(child.pid);
    const started = performance.now();
    await connectAll(0, clients);
    const seconds = (performance.now() - started) / 1000;
    return {
      cpuMsPerConnection: (cpuMs(child.pid) - before) / clients,
      perSecond: clients / seconds,
    };
  } finally {
    sockets.forEach((socket) => socket.terminate());
    agent.destroy();
    child.kill('SIGTERM'); // a clean exit, so --cpu-prof writes its profile
    await new Promise((done) => child.once('exit', done));
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = builds.map(() => []);
for (let i = 0; i < runs; i++) {
  const order = i % 2 === 0 ? builds.map((_, b) => b) : builds.map((_, b) => b).reverse();
  for (const b of order) {
    const result = await run(builds[b]);
    results[b].push(result);
    console.log(
      `${'AB'[b]} run ${i + 1}: ${result.cpuMsPerConnection.toFixed(3)} ms CPU/connection, ` +
        `${Math.round(result.perSecond)} connections/s`,
    );
  }
}
builds.forEach((main, b) => {
  const cpu = results[b].map((r) => r.cpuMsPerConnection);
  console.log(
    `${'AB'[b]} ${main}: median ${median(cpu).toFixed(3)} ms CPU/connection ` +
      `[${Math.min(...cpu).toFixed(3)}–${Math.max(...cpu).toFixed(3)}], ` +
      `${Math.round(median(results[b].map((r) => r.perSecond)))} connections/s`,
  );
});
