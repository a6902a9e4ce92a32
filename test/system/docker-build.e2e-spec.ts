import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDockerfile, replayDockerfile } from '../support/dockerfile';
import { spawnServer } from '../support/server-process';

const ROOT = join(__dirname, '..', '..');

/**
 * The image builds and runs (docs/operations.md, Deployment). There is no Docker engine here, so the test replays the
 * Dockerfile itself: each stage in a directory of its own, copying exactly what its COPY lines
 * name (less .dockerignore) and running its RUN lines. A file the build needs but the Dockerfile
 * does not copy fails here as it would in `docker build`.
 */
describe('Docker image, build replayed', () => {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const runtime = stages[stages.length - 1];
  const keywords = (keyword: string) =>
    runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

  it('is multi-stage and runs as a non-root user with a health check', () => {
    expect(stages.map((stage) => stage.name)).toEqual(['build', 'runtime']);
    expect(keywords('USER')).toEqual(['node']);
    expect(keywords('HEALTHCHECK').join()).toMatch(/\/health\/live/);
    expect(keywords('CMD')).toEqual(['["node", "dist/main.js"]']);
  });

  it('builds, and the runtime stage serves /health/live and the SDK and passes its HEALTHCHECK', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-image-'));
    try {
      const roots = replayDockerfile(ROOT, dir);
      const app = join(roots.get('runtime') as string, 'app');
      for (const file of ['dist/main.js', 'dist/public/index.html', 'node_modules/@nestjs/core']) {
        expect([file, existsSync(join(app, file))]).toEqual([file, true]);
      }
      expect(existsSync(join(app, 'dist/public/sdk/switchboard-client.js'))).toBe(true);
      expect(existsSync(join(app, 'node_modules/jest'))).toBe(false); // production only
      expect(existsSync(join(app, 'src'))).toBe(false);

      const server = await spawnServer(
        {
          NODE_ENV: 'production',
          JWT_SECRET: 'image-test-secret-that-is-long-enough-0123',
          METRICS_TOKEN: 'image-test-metrics-token',
          ALLOWED_ORIGINS: 'https://app.example.com',
          DEMO: 'true',
        },
        20_000,
        { main: join(app, 'dist/main.js'), cwd: app },
      );
      try {
        expect((await fetch(`${server.http}/health/live`)).status).toBe(200);
        const sdk = await fetch(`${server.http}/sdk/switchboard-client.js`);
        expect(sdk.status).toBe(200);
        expect(sdk.headers.get('content-type')).toMatch(/javascript/);
        expect(await sdk.text()).toMatch(/SwitchboardClient/);
        const check = keywords('HEALTHCHECK')[0].replace(/^.*?\bCMD\s+/, '');
        const probe = spawnSync('sh', ['-c', check], {
          cwd: app,
          env: { PATH: process.env.PATH ?? '', PORT: String(server.port) },
        });
        expect(probe.status).toBe(0);
      } finally {
        await server.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
