// A Redis Cluster of three masters (no replicas: the benchmark measures the load, not failover)
// on free ports, for the `shards` scenario. The test suite's cluster (with replicas, failover and
// checks) is test/support/redis-cluster.ts.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const cli = (port, ...args) =>
  run('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).then((r) => r.stdout);

/** Starts the cluster; answers its REDIS_URL, each master's pid and port, and `stop`. */
export async function startRedisCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-cluster-'));
  const ports = [];
  while (ports.length < 3) {
    const port = await freePort();
    if (port < 55535 && !ports.includes(port)) {
      ports.push(port);
    }
  }
  const children = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = () => {
    children.forEach((child) => child.kill('SIGKILL'));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const deadline = Date.now() + 10000;
      while ((await cli(port, 'PING').catch(() => '')).trim() !== 'PONG') {
        if (Date.now() > deadline) {
          throw new Error(`cluster node ${port} did not start`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 20000;
    while (
      !(await Promise.all(ports.map((p) => cli(p, 'CLUSTER', 'INFO')))).every((info) =>
        info.includes('cluster_state:ok'),
      )
    ) {
      if (Date.now() > deadline) {
        throw new Error('the benchmark cluster did not become healthy');
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    stop();
    throw error;
  }
  return {
    url: ports.map((port) => `redis://127.0.0.1:${port}`).join(','),
    nodes: ports.map((port, i) => ({ port, pid: children[i].pid })),
    /** How many shard channels each master holds subscribers for, by port. */
    async shardChannels() {
      return Promise.all(
        ports.map(async (port) => ({
          port,
          channels: (await cli(port, 'PUBSUB', 'SHARDCHANNELS')).split('\n').filter(Boolean).length,
        })),
      );
    },
    stop,
  };
}
