import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const FIXTURE = join(__dirname, 'fixtures', 'layers');

function cruise(cwd: string, paths: string[]): { status: number | null; output: string } {
  const result = spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs'),
      ...paths,
      '--config',
      join(ROOT, '.dependency-cruiser.cjs'),
      '--output-type',
      'err',
    ],
    { cwd, encoding: 'utf8' },
  );
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The dependency rules that `npm run lint` enforces, shown to bite on a fixture that breaks them. */
describe('dependency rules (.dependency-cruiser.cjs)', () => {
  it('fail on the core importing a feature, and on a cycle between folders', () => {
    const { status, output } = cruise(FIXTURE, ['libs']);
    expect(status).not.toBe(0);
    expect(output).toMatch(
      /layer-core: libs\/nest\/src\/core\/hub\.ts → libs\/nest\/src\/realtime\/gateway\.ts/,
    );
    expect(output).toMatch(
      /layer-auth: libs\/nest\/src\/auth\/a\.ts → libs\/nest\/src\/tickets\/t\.ts/,
    );
    expect(output).toMatch(/no-folder-cycles/);
  });

  it('pass on this repository', () => {
    const { status, output } = cruise(ROOT, ['src', 'libs']);
    expect(output).toMatch(/no dependency violations found/);
    expect(status).toBe(0);
  });
});
