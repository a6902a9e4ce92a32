// Runs before `npm test`: makes sure the real parts the tests drive are on this machine (Redis,
// nginx, openssl, docker-compose, Chromium, promtool). On Debian as root it installs what is
// missing with apt-get; otherwise it stops at once and prints the exact command to run. It never
// lets a test run into a missing binary halfway through the suite.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What the tests need: how to find it, and the Debian package that brings it. */
const REQUIREMENTS = [
  { what: 'redis-server', found: () => onPath('redis-server'), pkg: 'redis-server' },
  { what: 'redis-cli', found: () => onPath('redis-cli'), pkg: 'redis-tools' },
  { what: 'nginx', found: () => onPath('nginx') || existsSync('/usr/sbin/nginx'), pkg: 'nginx' },
  { what: 'openssl', found: () => onPath('openssl'), pkg: 'openssl' },
  {
    what: 'docker-compose',
    found: () => onPath('docker-compose') || runs('docker', ['compose', 'version']),
    pkg: 'docker-compose',
  },
  { what: 'chromium', found: () => existsSync('/usr/bin/chromium'), pkg: 'chromium' },
  // Checks and unit-tests deploy/prometheus/alerts.yml; Debian ships it with the Prometheus server.
  { what: 'promtool', found: () => onPath('promtool'), pkg: 'prometheus' },
];

function runs(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

function onPath(command) {
  return runs('sh', ['-c', `command -v ${command}`]);
}

const missing = REQUIREMENTS.filter((requirement) => !requirement.found());
if (missing.length === 0) {
  process.exit(0);
}

const packages = [...new Set(missing.map((requirement) => requirement.pkg))];
const names = missing.map((requirement) => requirement.what).join(', ');
const command = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

if (!onPath('apt-get')) {
  process.stderr.write(
    `The tests need ${names}, which this machine lacks, and there is no apt-get to install them.\n` +
      `Install the equivalents of the Debian packages ${packages.join(', ')}, or point the Redis ` +
      `tests at a running server with TEST_REDIS_URL=redis://host:port (the others still need theirs).\n`,
  );
  process.exit(1);
}
if (!isRoot) {
  process.stderr.write(
    `The tests need ${names}, which this machine lacks. Install them, then run npm test again:\n\n` +
      `  sudo sh -c '${command}'\n\n`,
  );
  process.exit(1);
}

process.stdout.write(`Installing what the tests need: ${packages.join(' ')}\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [
  ['update', '-qq'],
  ['install', '-y', '-qq', '--no-install-recommends', ...packages],
]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (result.status !== 0) {
    process.stderr.write(`apt-get ${args.join(' ')} failed; run by hand: ${command}\n`);
    process.exit(1);
  }
}
const stillMissing = REQUIREMENTS.filter((requirement) => !requirement.found());
if (stillMissing.length > 0) {
  process.stderr.write(
    `Still missing after apt-get: ${stillMissing.map((r) => r.what).join(', ')}\n`,
  );
  process.exit(1);
}
