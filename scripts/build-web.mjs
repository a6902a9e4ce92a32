// Builds what browsers load: the client SDK as a standalone ES module (dist/public/sdk/) and the
// demo page (dist/public/), which imports the SDK module as it is, without a bundler.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'public');
mkdirSync(join(out, 'sdk'), { recursive: true });

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2020',
  platform: 'browser',
  sourcemap: true,
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [join(root, 'libs/client/src/index.ts')],
  outfile: join(out, 'sdk', 'switchboard-client.js'),
  tsconfig: join(root, 'tsconfig.json'),
});

await build({
  ...common,
  entryPoints: [join(root, 'src/demo/web/app.ts')],
  outfile: join(out, 'app.js'),
  tsconfig: join(root, 'src/demo/web/tsconfig.json'),
  plugins: [
    {
      name: 'sdk-as-module',
      setup(builder) {
        builder.onResolve({ filter: /^@switchboard\/client$/ }, () => ({
          path: './sdk/switchboard-client.js',
          external: true,
        }));
      },
    },
  ],
});

for (const file of ['index.html', 'style.css', 'favicon.svg']) {
  copyFileSync(join(root, 'src/demo/web', file), join(out, file));
}
console.log(`web assets built in ${out}`);
