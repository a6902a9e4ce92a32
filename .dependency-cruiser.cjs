/**
 * The dependency rules of the library and the server (npm run lint runs them;
 * test/system/lint-rules.e2e-spec.ts shows that they bite). Folders of libs/nest/src form layers:
 * each may import only the folders before it in LAYERS, so a cycle between folders cannot form,
 * and the core knows no feature. libs/ never imports src/; the standalone server in src/ imports
 * the library only through its package, as any host does.
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
];

const LIB = 'libs/nest/src';

const above = (index) => LAYERS.slice(index + 1);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...LAYERS.slice(0, -1).map((layer, index) => ({
      name: `layer-${layer}`,
      comment: `${LIB}/${layer} may import only the layers before it (${LAYERS.slice(0, index).join(', ') || 'none'}): ${above(index).join(', ')} build on it`,
      severity: 'error',
      from: { path: `^${LIB}/${layer}/` },
      to: { path: `^${LIB}/(${above(index).join('|')})/` },
    })),
    {
      name: 'layer-app',
      comment: 'a feature folder never imports the library root (switchboard.module, index)',
      severity: 'error',
      from: { path: `^${LIB}/[^/]+/` },
      to: { path: `^${LIB}/[^/]+\\.ts$` },
    },
    {
      name: 'no-folder-cycles',
      comment: 'folders of the library must not depend on each other in a circle',
      severity: 'error',
      scope: 'folder',
      from: { path: `^${LIB}/` },
      to: { circular: true },
    },
    {
      name: 'libs-stand-alone',
      comment: 'libs/ is shipped to clients and shared: it never imports the server',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^src/' },
    },
    {
      name: 'server-through-package',
      comment: 'the standalone server imports the library as @switchboard/nest, like any host',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: `^${LIB}/`, pathNot: `^${LIB}/index\\.ts$` },
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
