import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { MAIN } from '../support/server-process';

function boot(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // Generous: a loaded machine takes seconds to load the server before it can refuse.
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The built server (`node dist/main.js`) refuses bad configuration at boot. */
describe('boot-time configuration errors', () => {
  beforeAll(() => {
    if (!existsSync(MAIN)) {
      throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
    }
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ JWT_SECRET: 'too-short' }, 'JWT_SECRET'],
    [{ TRUST_PROXY: 'maybe' }, 'TRUST_PROXY'],
    [{ ALLOWED_ORIGINS: 'app.example.com' }, 'ALLOWED_ORIGINS'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ NODE_ENV: 'production', ALLOWED_ORIGINS: 'https://app.example.com' }, 'JWT_SECRET'],
    [
      {
        NODE_ENV: 'production',
        JWT_SECRET: 'x'.repeat(32),
        ALLOWED_ORIGINS: 'https://a.example.com',
        DEV_AUTH: 'true',
      },
      'DEV_AUTH',
    ],
    [{ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }, 'ALLOWED_ORIGINS'],
    [
      { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), ALLOWED_ORIGINS: 'https://a.example' },
      'METRICS_TOKEN',
    ],
    [{ METRICS_TOKEN: 'm'.repeat(16), METRICS_PUBLIC: 'true' }, 'METRICS_PUBLIC'],
    [{ PRESENCE_EVENTS_MAX_MEMBERS: '1000' }, 'PRESENCE_EVENTS_MAX_MEMBERS'],
    [{ PRESENCE_BATCH_MS: '5' }, 'PRESENCE_BATCH_MS'],
  ])('%j exits 1 with one line naming %s', async (env, variable) => {
    const { code, stderr, stdout } = await boot(env);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^Invalid configuration: ${variable} `));
  });
});
