import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import Redis from 'ioredis';
import { killAndWait, owned } from './children';

const INSTALL_HINT =
  'The tests need a real Redis. Install redis-server (Debian/Ubuntu: apt-get install redis-server; ' +
  'macOS: brew install redis) or set TEST_REDIS_URL=redis://host:port to use a running one.';

/** A unique REDIS_PREFIX per test, so tests cannot see each other's keys and channels. */
export function testPrefix(): string {
  return `t${randomBytes(4).toString('hex')}:`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * A real `redis-server` process owned by the test suite, on a free port (`--port 0` would turn
 * TCP off), persisting nothing. It can be stopped and started again on the same port, for fault
 * tests.
 */
export class RedisServer {
  private process: ChildProcess | null = null;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    if (spawnSync('redis-server', ['--version']).error) {
      throw new Error(`redis-server was not found on PATH. ${INSTALL_HINT}`);
    }
    const server = new RedisServer(await freePort());
    await server.resume();
    return server;
  }

  /** Starts (again) on the same port and waits until it answers PING. */
  async resume(): Promise<void> {
    const child = owned(
      spawn('redis-server', redisServerArgs(this.port), { stdio: ['ignore', 'ignore', 'pipe'] }),
      `redis-server on port ${this.port}`,
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.process = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
      }
      if (await ping(this.url)) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`redis-server did not answer on port ${this.port} within 10 s: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Freezes the process (SIGSTOP): commands sent meanwhile wait until `thaw`. */
  freeze(): void {
    this.process?.kill('SIGSTOP');
  }

  thaw(): void {
    this.process?.kill('SIGCONT');
  }

  /** Stops the process (SIGKILL: no goodbye to clients) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = null;
    await killAndWait(child);
  }
}

/** `redis-server` on `port` of loopback, persisting nothing, logging warnings only. */
export function redisServerArgs(port: number): string[] {
  return [
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
  ];
}

async function ping(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * The Redis the suite talks to: `TEST_REDIS_URL` when set, otherwise a `redis-server` started for
 * the calling test file. Fails with installation advice when neither is possible: never skips.
 */
export async function suiteRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const given = process.env.TEST_REDIS_URL;
  if (given) {
    if (!(await ping(given))) {
      throw new Error(`TEST_REDIS_URL=${given} does not answer PING. ${INSTALL_HINT}`);
    }
    return { url: given, stop: () => Promise.resolve() };
  }
  const server = await RedisServer.start();
  return { url: server.url, stop: () => server.stop() };
}
