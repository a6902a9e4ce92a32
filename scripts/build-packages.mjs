// Builds the npm packages of libs/ to their own dist/, protocol first, since the others'
// declarations import it by name:
// - protocol and client: ES module (index.mjs), CommonJS (index.cjs) and type declarations
//   (index.d.ts and the files it imports);
// - nest: CommonJS and declarations, file by file, by tsc (Nest's decorators need the type
//   metadata that only tsc emits).
//   node scripts/build-packages.mjs [protocol|client|nest ...]   (default: all)
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const ORDER = ['protocol', 'client', 'nest'];
const asked = process.argv.slice(2);
const packages = asked.length === 0 ? ORDER : ORDER.filter((name) => asked.includes(name));

for (const name of packages) {
  const dir = join(root, 'libs', name);
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
  if (name === 'nest') {
    execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], {
      stdio: 'inherit',
    });
    console.log(`@switchboard/${name} built in libs/${name}/dist`);
    continue;
  }
  for (const [format, extension] of [
    ['esm', 'mjs'],
    ['cjs', 'cjs'],
  ]) {
    await build({
      entryPoints: [join(dir, 'src', 'index.ts')],
      outfile: join(dir, 'dist', `index.${extension}`),
      bundle: true,
      // Another package is a dependency, never copied in: @switchboard/protocol stays an import.
      packages: 'external',
      format,
      platform: 'neutral',
      target: 'es2020',
      sourcemap: true,
      logLevel: 'warning',
    });
  }
  execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  console.log(`@switchboard/${name} built in libs/${name}/dist`);
}
