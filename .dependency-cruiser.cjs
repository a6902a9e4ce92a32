/**
 * The dependency rules of src/ (npm run lint runs them; test/system/lint-rules.e2e-spec.ts shows that they
 * bite). Folders of src/ form layers: each may import only the folders before it in LAYERS, so a
 * cycle between folders cannot form, and the core knows no feature. libs/ never imports src/.
 */
const LAYERS = [
  'common',
  'config',
  'logging',
  'metrics',
  'redis',
  'core',
  'rate-limit',
  'auth',
  'tickets',
  'broadcast',
  'realtime',
  'health',
  'demo',
];

const above = (index) => LAYERS.slice(index + 1);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...LAYERS.slice(0, -1).map((layer, index) => ({
      name: `layer-${layer}`,
      comment: `src/${layer} may import only the layers before it (${LAYERS.slice(0, index).join(', ') || 'none'}): ${above(index).join(', ')} build on it`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: `^src/(${above(index).join('|')})/` },
    })),
    {
      name: 'layer-app',
      comment:
        'a feature folder never imports the application root (app.module, app.factory, main)',
      severity: 'error',
      from: { path: '^src/[^/]+/' },
      to: { path: '^src/[^/]+\\.ts$' },
    },
    {
      name: 'no-folder-cycles',
      comment: 'folders of src/ must not depend on each other in a circle',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'libs-stand-alone',
      comment: 'libs/ is shipped to clients and shared: it never imports the server',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^src/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist)/|\\.spec\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
