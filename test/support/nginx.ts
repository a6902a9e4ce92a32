import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { owned } from './children';
import { freePort } from './redis';

const CONFIG = join(__dirname, '..', '..', 'deploy', 'nginx.conf');

/** Debian's real nginx running the shipped deploy/nginx.conf, ports rewritten for the test. */
export class Nginx {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
  ) {}

  static async start(upstreamPorts: [number, number]): Promise<Nginx> {
    const binary = ['/usr/sbin/nginx', 'nginx'].find(
      (candidate) => !spawnSync(candidate, ['-v']).error,
    );
    if (binary === undefined) {
      throw new Error(
        'nginx was not found. Install it (Debian/Ubuntu: apt-get install nginx); .ci/run does.',
      );
    }
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-nginx-'));
    const port = await freePort();
    const config = readFileSync(CONFIG, 'utf8')
      .replace('server switchboard-1:3000', `server 127.0.0.1:${upstreamPorts[0]}`)
      .replace('server switchboard-2:3000', `server 127.0.0.1:${upstreamPorts[1]}`)
      .replace(/listen 8080;/, `listen 127.0.0.1:${port};`)
      .replace(
        'access_log /dev/stdout switchboard;',
        `access_log ${join(dir, 'access.log')} switchboard;`,
      )
      .replace(/^worker_processes .*;$/m, 'worker_processes 1;');
    if (
      !config.includes(`127.0.0.1:${upstreamPorts[1]}`) ||
      !config.includes(`listen 127.0.0.1:${port}`)
    ) {
      throw new Error('deploy/nginx.conf no longer has the lines this test rewrites');
    }
    writeFileSync(join(dir, 'nginx.conf'), config);
    const child = spawn(
      binary,
      [
        '-c',
        join(dir, 'nginx.conf'),
        '-p',
        dir,
        '-g',
        `daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')} warn;`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    owned(child, `nginx on port ${port}`);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const nginx = new Nginx(child, dir, port);
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await fetch(`http://127.0.0.1:${port}/health/live`);
        return nginx;
      } catch {
        if (child.exitCode !== null || Date.now() > deadline) {
          await nginx.stop();
          throw new Error(`nginx did not start: ${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  accessLog(): string {
    return readFileSync(join(this.dir, 'access.log'), 'utf8');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      await new Promise<void>((resolve) => {
        this.child.once('exit', () => resolve());
        this.child.kill('SIGQUIT');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
