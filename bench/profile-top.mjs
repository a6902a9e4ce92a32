// node bench/profile-top.mjs <file.cpuprofile> [--top 30]
// Summarizes a V8 CPU profile (from --cpu-prof): the functions with the most self time, and the
// time spent inside each package (inclusive: a package's callees count towards it).
import { readFileSync } from 'node:fs';

const [file] = process.argv.slice(2);
const top = process.argv.includes('--top')
  ? Number(process.argv[process.argv.indexOf('--top') + 1])
  : 30;
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parents = new Map();
for (const node of profile.nodes) {
  for (const child of node.children ?? []) {
    parents.set(child, node.id);
  }
}
const selfUs = new Map();
profile.samples.forEach((id, i) =>
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
);
const idle = [...selfUs].filter(([id]) => nodes.get(id).callFrame.functionName === '(idle)');
const busyUs =
  [...selfUs.values()].reduce((a, b) => a + b, 0) - idle.reduce((a, [, t]) => a + t, 0);

const where = ({ url, lineNumber }) =>
  `${url.replace(/.*node_modules\//, '').replace(/.*\/(dist|src)\//, '$1/')}:${lineNumber + 1}`;
const packageOf = (url) =>
  /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
  (url.startsWith('node:')
    ? url.split('/')[0]
    : url.includes('/dist/')
      ? '(the app)'
      : '(V8, GC, native)');

const self = new Map();
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const frame = nodes.get(id).callFrame;
  if (frame.functionName === '(idle)') {
    continue;
  }
  const name = `${frame.functionName || '(anonymous)'} ${where(frame)}`;
  self.set(name, (self.get(name) ?? 0) + us);
  const seen = new Set();
  for (let at = id; at !== undefined; at = parents.get(at)) {
    const pkg = packageOf(nodes.get(at).callFrame.url);
    if (!seen.has(pkg)) {
      seen.add(pkg);
      inclusive.set(pkg, (inclusive.get(pkg) ?? 0) + us);
    }
  }
}
const print = (title, map) => {
  console.log(title);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busyUs).toFixed(1).padStart(5)} %  ${name}`,
    );
  }
};
console.log(`busy: ${(busyUs / 1000).toFixed(0)} ms (idle left out)`);
print('self time, by function', self);
print('inclusive time, by package', inclusive);
