import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

/** One instruction of a Dockerfile, continuation lines joined. */
export interface Instruction {
  keyword: string;
  args: string;
}

/** A stage: its name and its instructions after FROM. */
export interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Parses a Dockerfile into stages (comments, parser directives and blank lines dropped). */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  for (const line of logical) {
    const [keyword, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!match) {
        throw new Error(`cannot read FROM ${args}`);
      }
      stages.push({ name: match[2] ?? String(stages.length), from: match[1], instructions: [] });
    } else if (stages.length === 0) {
      throw new Error(`${keyword} before FROM`);
    } else {
      stages[stages.length - 1].instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

/**
 * Replays the stages of a Dockerfile on this machine, each in a directory of its own standing in
 * for the image's file system: `WORKDIR`, `ENV`, `COPY` (from the build context, less what
 * `.dockerignore` names, or `--from` an earlier stage) and `RUN` (with `sh -c`). What the base
 * image brings (Node.js, npm) is this machine's. Throws, naming the step, when a step fails or
 * copies something that does not exist: the errors `docker build` would give.
 */
export function replayDockerfile(context: string, into: string): Map<string, string> {
  const ignored = readIgnore(context);
  const roots = new Map<string, string>();
  for (const stage of parseDockerfile(readFileSync(join(context, 'Dockerfile'), 'utf8'))) {
    const root = join(into, stage.name);
    mkdirSync(root, { recursive: true });
    roots.set(stage.name, root);
    let workdir = '/';
    const env: Record<string, string> = {};
    for (const { keyword, args } of stage.instructions) {
      const inImage = (path: string): string => join(root, resolve(workdir, path));
      switch (keyword) {
        case 'WORKDIR':
          workdir = resolve(workdir, args);
          mkdirSync(inImage('.'), { recursive: true });
          break;
        case 'ENV': {
          const [name, ...value] = args.split(/[= ]/);
          env[name] = value.join('=');
          break;
        }
        case 'COPY': {
          const words = args.split(/\s+/);
          const from = words[0].startsWith('--from=') ? words.shift()?.slice(7) : undefined;
          const destination = words.pop() as string;
          const sourceRoot = from === undefined ? context : roots.get(from);
          if (sourceRoot === undefined) {
            throw new Error(`COPY --from=${from}: no such stage`);
          }
          for (const source of words) {
            const path = from === undefined ? join(context, source) : join(sourceRoot, source);
            if (!existsSync(path)) {
              throw new Error(`COPY ${args}: ${source} does not exist`);
            }
            const target = destination.endsWith('/')
              ? join(inImage(destination), basename(source))
              : inImage(destination);
            // .dockerignore applies to the build context, not to what a stage built.
            cpSync(path, target, {
              recursive: statSync(path).isDirectory(),
              filter: (file) => from !== undefined || !ignored.has(basename(file)),
            });
          }
          break;
        }
        case 'RUN': {
          const result = spawnSync('sh', ['-c', args], {
            cwd: inImage('.'),
            env: {
              PATH: process.env.PATH ?? '',
              HOME: process.env.HOME ?? '/tmp',
              // The machine's npm cache answers without asking the registry again, as Docker's
              // layer cache would: the same lock file, installed in seconds instead of minutes.
              npm_config_prefer_offline: 'true',
              ...trust(),
              ...env,
            },
            encoding: 'utf8',
          });
          if (result.status !== 0) {
            throw new Error(
              `RUN ${args} failed (${result.status}):\n${result.stdout}\n${result.stderr}`,
            );
          }
          break;
        }
        default:
          // USER, EXPOSE, HEALTHCHECK, STOPSIGNAL, CMD: read by the test, nothing to replay.
          break;
      }
    }
  }
  return roots;
}

/** The names `.dockerignore` leaves out (plain names and directory names only). */
function readIgnore(context: string): Set<string> {
  const path = join(context, '.dockerignore');
  if (!existsSync(path)) {
    return new Set();
  }
  return new Set(
    readFileSync(path, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#') && !/[*?]/.test(line)),
  );
}

/**
 * The machine's extra certificate authorities, as a build behind a TLS-inspecting proxy passes
 * them in (a build argument): Node's own CA list does not have them, and a Node that does not read
 * the system's store (the npm registry's Node 24, unlike Debian's Node 20) cannot reach the
 * registry without them.
 */
function trust(): Record<string, string> {
  const names = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'npm_config_cafile'];
  return Object.fromEntries(
    names.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])),
  );
}
