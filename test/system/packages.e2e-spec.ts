import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startApp, type TestApp } from '../support/app';

const ROOT = resolve(__dirname, '../..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TSC = require.resolve('typescript/bin/tsc');
/** Node 20 has WebSocket behind a flag; 22 and later have it on. */
const WEBSOCKET_FLAG =
  typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function'
    ? []
    : ['--experimental-websocket'];

/** The folder of an installed package of this repository. */
const moduleDir = (name: string): string => join(ROOT, 'node_modules', name);

/** The packages and, recursively, their dependencies, as installed in this repository. */
function packageClosure(names: string[]): string[] {
  const found = new Set<string>();
  const visit = (name: string): void => {
    if (found.has(name)) {
      return;
    }
    found.add(name);
    const manifest = JSON.parse(readFileSync(join(moduleDir(name), 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    Object.keys(manifest.dependencies ?? {}).forEach(visit);
  };
  names.forEach(visit);
  return [...found];
}

/** The Node setup of docs/sdk.md, as it is written there: its TypeScript block that imports `ws`. */
function documentedNodeSetup(): string {
  const blocks = [
    ...readFileSync(join(ROOT, 'docs/sdk.md'), 'utf8').matchAll(/```ts\n([^]*?)```/g),
  ];
  const setup = blocks.map((block) => block[1]).find((code) => code.includes("from 'ws'"));
  if (setup === undefined) {
    throw new Error("docs/sdk.md has no TypeScript block that imports 'ws'");
  }
  return setup;
}

/**
 * The npm packages as a web team gets them: built, packed with `npm pack`, installed from the
 * tarballs into an empty project outside this repository (nothing of the repository resolves
 * there), then imported from ES modules and CommonJS, type-checked from TypeScript, and used to
 * talk to a running server.
 */
describe('packages from their tarballs', () => {
  let scratch: string;
  let app: TestApp;

  const run = (args: string[], options: { env?: NodeJS.ProcessEnv } = {}): string => {
    const result = spawnSync(process.execPath, args, {
      cwd: scratch,
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: '', ...options.env },
      timeout: 30_000,
    });
    if (result.status !== 0) {
      throw new Error(`node ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
    }
    return result.stdout;
  };

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-packages.mjs')], {
      cwd: ROOT,
      stdio: 'pipe',
    });
    scratch = mkdtempSync(join(tmpdir(), 'switchboard-consumer-'));
    const packed = ['libs/protocol', 'libs/client'].map((workspace) => {
      const out = execFileSync(
        NPM,
        ['pack', '--json', '--workspace', workspace, '--pack-destination', scratch],
        { cwd: ROOT, encoding: 'utf8' },
      );
      return join(scratch, (JSON.parse(out) as Array<{ filename: string }>)[0].filename);
    });
    // What docs/sdk.md has a Node 20 user install beside them, packed from this repository's own
    // node_modules so that the test needs no registry.
    const nodeSetup = packageClosure(['ws', '@types/ws']).map((name) => {
      const out = execFileSync(
        NPM,
        ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch, moduleDir(name)],
        { cwd: scratch, encoding: 'utf8' },
      );
      return join(scratch, (JSON.parse(out) as Array<{ filename: string }>)[0].filename);
    });
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
    );
    execFileSync(
      NPM,
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--offline',
        ...packed,
        ...nodeSetup,
      ],
      { cwd: scratch, stdio: 'pipe' },
    );
    app = await startApp();
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    if (scratch) {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('packs only the build, the README and the manifest, with exports for both module systems', () => {
    for (const name of ['protocol', 'client']) {
      const manifest = JSON.parse(
        readFileSync(join(scratch, 'node_modules/@switchboard', name, 'package.json'), 'utf8'),
      ) as { exports: Record<string, Record<string, string>>; sideEffects: boolean };
      expect(manifest.exports['.']).toEqual({
        types: './dist/index.d.ts',
        import: './dist/index.mjs',
        require: './dist/index.cjs',
      });
      expect(manifest.sideEffects).toBe(false);
      const files = execFileSync('find', ['.', '-type', 'f'], {
        cwd: join(scratch, 'node_modules/@switchboard', name),
        encoding: 'utf8',
      })
        .split('\n')
        .filter(Boolean);
      expect(
        files.filter((file) => !/^\.\/(dist\/|README\.md$|package\.json$)/.test(file)),
      ).toEqual([]);
      expect(files.some((file) => file.endsWith('.spec.js') || file.includes('/src/'))).toBe(false);
    }
  });

  it('imports the client from Node ESM and from CommonJS', () => {
    const esm = run([
      '--input-type=module',
      '-e',
      `import { SwitchboardClient, CloseCode, closeAction } from '@switchboard/client';
       import { ErrorCode } from '@switchboard/protocol';
       console.log(JSON.stringify([typeof SwitchboardClient, CloseCode.SessionRevoked, closeAction(4002), ErrorCode.RateLimited]));`,
    ]);
    expect(JSON.parse(esm)).toEqual(['function', 4003, 'refresh-token', 'rate_limited']);
    const cjs = run([
      '-e',
      `const { SwitchboardClient, CloseCode } = require('@switchboard/client');
       console.log(JSON.stringify([typeof SwitchboardClient, CloseCode.Replaced, require.resolve('@switchboard/client').startsWith(process.cwd())]));`,
    ]);
    expect(JSON.parse(cjs)).toEqual(['function', 4009, true]);
  });

  it('type-checks a TypeScript consumer against the declarations, and rejects a wrong use', () => {
    writeFileSync(join(scratch, 'node-setup.mts'), documentedNodeSetup());
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2022', 'dom'],
          types: [],
          skipLibCheck: false,
        },
        files: ['consumer.mts', 'node-setup.mts'],
      }),
    );
    const consumer = (extra: string): string => `
      import { SwitchboardClient, type ConnectionState, type RoomJoinedData } from '@switchboard/client';
      import { CloseCode, type ServerMessage } from '@switchboard/protocol';
      const client = new SwitchboardClient({ url: 'https://rt.example.com', getAccessToken: () => 'token' });
      const inPage = new SwitchboardClient({ url: '/', getAccessToken: () => 'token', WebSocket: globalThis.WebSocket });
      const state: ConnectionState = client.state;
      const joined: Promise<RoomJoinedData> = client.join('lobby');
      client.on('recovered', ({ room, missed }) => console.log(room, missed));
      client.onEvent<{ id: string }>('invoice.paid', (data) => console.log(data.id));
      const onMessage = (message: ServerMessage): string => message.type;
      const code: number = CloseCode.SessionExpired;
      export { inPage, state, joined, onMessage, code };
      ${extra}`;
    const tsc = (source: string) => {
      writeFileSync(join(scratch, 'consumer.mts'), source);
      return spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json'], {
        cwd: scratch,
        encoding: 'utf8',
      });
    };
    const good = tsc(consumer(''));
    expect(good.stdout + good.stderr).toBe('');
    expect(good.status).toBe(0);
    const bad = tsc(consumer(`client.join(42);`));
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/consumer\.mts.*TS2345/);
  });

  it('connects to a running server with the installed client, joins a room and hears itself', async () => {
    const token = await app.devToken('pkg-user', { name: 'Package' });
    const script = `
      import { SwitchboardClient } from '@switchboard/client';
      const client = new SwitchboardClient({ url: process.env.SERVER, getAccessToken: () => process.env.TOKEN });
      const heard = new Promise((done) => client.onEvent('room.message', (m) => done(m)));
      client.connect();
      const joined = await client.join('pkg-room');
      client.message('pkg-room', 'hello from the tarball');
      const message = await heard;
      console.log(JSON.stringify({ state: client.state, user: client.welcome.user, joined: joined.room, message }));
      client.close();
    `;
    const out = await new Promise<string>((done, fail) => {
      execFile(
        process.execPath,
        [...WEBSOCKET_FLAG, '--no-warnings', '--input-type=module', '-e', script],
        { cwd: scratch, env: { ...process.env, SERVER: app.http, TOKEN: token }, timeout: 20_000 },
        (error, stdout, stderr) =>
          error ? fail(new Error(`${error.message}\n${stderr}`)) : done(stdout),
      );
    });
    const result = JSON.parse(out) as {
      state: string;
      user: { id: string; name: string };
      joined: string;
      message: { room: string; text: string; from: { id: string } };
    };
    expect(result.state).toBe('open');
    expect(result.user).toMatchObject({ id: 'pkg-user', name: 'Package' });
    expect(result.joined).toBe('pkg-room');
    expect(result.message).toMatchObject({
      room: 'pkg-room',
      text: 'hello from the tarball',
      from: { id: 'pkg-user' },
    });
  });
});
