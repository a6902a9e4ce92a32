import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { owned } from './children';
import { waitUntil } from './wait';

export const MAIN = join(__dirname, '..', '..', 'dist', 'main.js');

/** The built server (`node dist/main.js`) as a child process on a free port. */
export interface ServerProcess {
  child: ChildProcess;
  port: number;
  http: string;
  ws: string;
  /** Everything it printed on stdout, line by line. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The standalone server's line that says it listens, with the URL it listens on. */
const SWITCHBOARD_LISTENING =
  /^(?=.*"msg":"Switchboard listening").*"url":"https?:\/\/[^"]*:(\d+)"/;

/**
 * @param options.listening the line that says the process listens, its port captured
 *   (a host application's own, for the examples)
 * @param options.readyPath the readiness probe waited for in cluster mode
 */
export async function spawnServer(
  env: Record<string, string>,
  timeoutMs = 10_000,
  {
    main = MAIN,
    cwd,
    listening = SWITCHBOARD_LISTENING,
    readyPath = '/health/ready',
  }: { main?: string; cwd?: string; listening?: RegExp; readyPath?: string } = {},
): Promise<ServerProcess> {
  if (!existsSync(main)) {
    throw new Error(`${main} is missing: run "npm run build" first (npm test does)`);
  }
  const child = spawn(process.execPath, [main], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  owned(child, `server ${main}`);
  const lines: string[] = [];
  let stderr = '';
  let buffered = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start within ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        const match = listening.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${stderr}`));
    });
  });
  if (env.REDIS_URL) {
    // In cluster mode an instance takes sockets once its lease is held (a few ms after it
    // listens): wait for readiness, as a load balancer would.
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${port}${readyPath}`)).status === 200,
      `the server on port ${port} to be ready`,
      timeoutMs,
    );
  }
  return {
    child,
    port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}${env.WS_PATH ?? '/ws'}`,
    lines,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
      }
      return exited;
    },
  };
}
