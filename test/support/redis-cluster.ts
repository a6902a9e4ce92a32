import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { killAndWait, owned } from './children';
import { freePort, redisServerArgs } from './redis';

const run = promisify(execFile);

const INSTALL_HINT =
  'The Redis Cluster tests need redis-server and redis-cli 7 or newer (Debian/Ubuntu: apt-get ' +
  'install redis-server redis-tools).';

/** One `redis-server --cluster-enabled yes` process of a test cluster. */
class ClusterNode {
  process: ChildProcess | null = null;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start(): void {
    const child = spawn(
      'redis-server',
      [
        ...redisServerArgs(this.port),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(this.dir, `nodes-${this.port}.conf`),
        '--cluster-node-timeout',
        '1000',
        // A replica may take over however long ago it last heard its master: the tests kill
        // masters on purpose, and must see the failover, not a cluster that gave up.
        '--cluster-replica-validity-factor',
        '0',
        '--dbfilename',
        `dump-${this.port}.rdb`,
        '--logfile',
        join(this.dir, `node-${this.port}.log`),
        '--dir',
        this.dir,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.resume();
    this.process = owned(child, `cluster node redis-server on port ${this.port}`);
  }

  /** SIGKILL: the node vanishes without a word, as a crashed master does. */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = null;
    await killAndWait(child);
  }

  client(): Redis {
    const client = new Redis(this.port, '127.0.0.1', {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      lazyConnect: true,
    });
    client.on('error', () => undefined);
    return client;
  }
}

/**
 * A real Redis Cluster owned by the test suite: three masters and three replicas on free ports,
 * made by `redis-cli --cluster create … --cluster-replicas 1`, persisting nothing. `nodeTimeout`
 * is 1 s, so that a killed master's replica is promoted within a few seconds.
 */
export class RedisCluster {
  private constructor(
    readonly nodes: ClusterNode[],
    private readonly dir: string,
  ) {}

  /** `REDIS_URL` for `REDIS_MODE=cluster`: every node, comma-separated (any would do as a seed). */
  get url(): string {
    return this.nodes.map((node) => `redis://${node.address}`).join(',');
  }

  static async start(): Promise<RedisCluster> {
    const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (version.error || spawnSync('redis-cli', ['--version']).error) {
      throw new Error(`redis-server or redis-cli was not found on PATH. ${INSTALL_HINT}`);
    }
    const major = Number(/v=(\d+)/.exec(version.stdout)?.[1] ?? 0);
    if (major < 7) {
      throw new Error(`redis-server ${major} has no sharded pub/sub. ${INSTALL_HINT}`);
    }
    const dir = await mkdtemp(join(tmpdir(), 'sb-cluster-'));
    const ports: number[] = [];
    while (ports.length < 6) {
      const port = await freePort();
      // The cluster bus listens on port + 10000: both must be free, and distinct from the others.
      if (port < 55535 && !ports.includes(port) && !ports.includes(port + 10000)) {
        ports.push(port);
      }
    }
    const cluster = new RedisCluster(
      ports.map((port) => new ClusterNode(port, dir)),
      dir,
    );
    try {
      cluster.nodes.forEach((node) => node.start());
      await Promise.all(cluster.nodes.map((node) => waitForPing(node)));
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...cluster.nodes.map((node) => node.address),
          '--cluster-replicas',
          '1',
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await cluster.waitUntilHealthy();
      await cluster.waitForReplicas();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /**
   * Waits until every live node reports `cluster_state:ok` and sees every slot served by a live
   * master, e.g. after a failover (a dead master still counts as "ok" until it is marked failed).
   */
  async waitUntilHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const live = new Set(this.live().map((node) => node.port));
    for (;;) {
      const states = await Promise.all(
        this.live().map(async (node) => {
          const info = await clusterInfo(node).catch(() => '');
          const served = await liveSlots(node, live).catch(() => 0);
          return `${info}\nslots served by live masters: ${served}`;
        }),
      );
      if (
        states.every(
          (state) =>
            /cluster_state:ok/.test(state) &&
            /slots_ok:16384/.test(state) &&
            /live masters: 16384/.test(state),
        )
      ) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`Redis Cluster not healthy within ${timeoutMs} ms:\n${states.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Waits until every replica has synced with its master (a failover then loses nothing). */
  async waitForReplicas(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const roles = await Promise.all(
        this.live().map(async (node) => {
          const client = node.client();
          try {
            await client.connect();
            return await client.info('replication');
          } catch {
            return '';
          } finally {
            client.disconnect();
          }
        }),
      );
      const replicas = roles.filter((info) => /role:slave/.test(info));
      if (replicas.length === 3 && replicas.every((info) => /master_link_status:up/.test(info))) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`replicas not in sync within ${timeoutMs} ms:\n${roles.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The live node that is master of `slot`. */
  async masterOf(slot: number): Promise<ClusterNode> {
    for (const node of this.live()) {
      const client = node.client();
      try {
        await client.connect();
        const slots = (await client.cluster('SLOTS')) as unknown as Array<
          [number, number, [string, number]]
        >;
        const range = slots.find(([from, to]) => slot >= from && slot <= to);
        if (range) {
          const master = this.nodes.find((n) => n.port === range[2][1]);
          if (master?.process) {
            return master;
          }
        }
      } catch {
        // this node does not answer: ask the next
      } finally {
        client.disconnect();
      }
    }
    throw new Error(`no live master serves slot ${slot}`);
  }

  /** The live replica of `master`, in sync with it. */
  async replicaOf(master: ClusterNode): Promise<ClusterNode> {
    for (const node of this.live()) {
      const role = await withClient(node, (client) => client.call('ROLE')).catch(() => []);
      const [kind, , port, state] = role as [string, string, number, string];
      if (kind === 'slave' && Number(port) === master.port && state === 'connected') {
        return node;
      }
    }
    throw new Error(`no live replica in sync with the master on port ${master.port}`);
  }

  /**
   * `CLUSTER FAILOVER` on `replica`: a manual failover, coordinated with its master so that no
   * write is lost. Resolves once every live node sees `replica` as the master of `slot`.
   */
  async failover(replica: ClusterNode, slot: number, timeoutMs = 15_000): Promise<void> {
    await withClient(replica, (client) => client.cluster('FAILOVER'));
    await this.waitForOwner(slot, replica, timeoutMs);
  }

  /**
   * Moves `slot` to the master `target` as `redis-cli --cluster reshard` does: the target
   * imports, the owner migrates, the slot's keys are MIGRATEd, then every master is told the new
   * owner. Resolves once every live node sees it.
   */
  async migrateSlot(slot: number, target: ClusterNode, timeoutMs = 15_000): Promise<void> {
    const source = await this.masterOf(slot);
    const [sourceId, targetId] = await Promise.all(
      [source, target].map((node) => withClient(node, (client) => client.cluster('MYID'))),
    );
    await withClient(target, (client) => client.cluster('SETSLOT', slot, 'IMPORTING', sourceId));
    await withClient(source, (client) => client.cluster('SETSLOT', slot, 'MIGRATING', targetId));
    await withClient(source, async (client) => {
      for (;;) {
        const keys = await client.cluster('GETKEYSINSLOT', slot, 100);
        if (keys.length === 0) {
          return;
        }
        await client.migrate('127.0.0.1', target.port, '', 0, 5_000, 'KEYS', ...keys);
      }
    });
    const masters = await Promise.all([0, 5461, 10923].map((s) => this.masterOf(s)));
    for (const node of [target, source, ...masters.filter((m) => m !== target && m !== source)]) {
      await withClient(node, (client) => client.cluster('SETSLOT', slot, 'NODE', targetId));
    }
    await this.waitForOwner(slot, target, timeoutMs);
  }

  /** Waits until every live node's slot map names `owner` as the master of `slot`. */
  private async waitForOwner(slot: number, owner: ClusterNode, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const owners = await Promise.all(
        this.live().map((node) =>
          withClient(node, (client) => client.cluster('SLOTS'))
            .then((slots) =>
              (slots as unknown as Array<[number, number, [string, number]]>).find(
                ([from, to]) => slot >= from && slot <= to,
              ),
            )
            .then((range) => range?.[2][1])
            .catch(() => undefined),
        ),
      );
      if (owners.every((port) => port === owner.port)) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `slot ${slot} not on port ${owner.port} within ${timeoutMs} ms: ${owners.join(', ')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The slot of a key or shard channel, as the cluster computes it. */
  async slotOf(name: string): Promise<number> {
    const client = this.live()[0].client();
    try {
      await client.connect();
      return Number(await client.cluster('KEYSLOT', name));
    } finally {
      client.disconnect();
    }
  }

  /** Subscribers of a shard channel, as the node that owns it counts them. */
  async shardSubscribers(node: ClusterNode, channel: string): Promise<number> {
    const client = node.client();
    try {
      await client.connect();
      const [, count] = (await client.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
      return Number(count);
    } finally {
      client.disconnect();
    }
  }

  live(): ClusterNode[] {
    return this.nodes.filter((node) => node.process !== null);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** How many slots `node` sees served by a master among `live` ports. */
async function liveSlots(node: ClusterNode, live: ReadonlySet<number>): Promise<number> {
  const client = node.client();
  try {
    await client.connect();
    const slots = (await client.cluster('SLOTS')) as unknown as Array<
      [number, number, [string, number]]
    >;
    return slots
      .filter(([, , master]) => live.has(Number(master[1])))
      .reduce((sum, [from, to]) => sum + to - from + 1, 0);
  } finally {
    client.disconnect();
  }
}

/** Runs `use` on a fresh connection to `node`, then drops the connection. */
async function withClient<T>(node: ClusterNode, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = node.client();
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

async function clusterInfo(node: ClusterNode): Promise<string> {
  const client = node.client();
  try {
    await client.connect();
    return await client.cluster('INFO');
  } finally {
    client.disconnect();
  }
}

async function waitForPing(node: ClusterNode): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = node.client();
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') {
        return;
      }
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    if (node.process?.exitCode != null || Date.now() > deadline) {
      throw new Error(`redis-server (cluster node) on port ${node.port} did not start`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export type { ClusterNode };
