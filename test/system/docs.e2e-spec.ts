import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { Parser } from '@asyncapi/parser';
import {
  CLIENT_MESSAGE_TYPES,
  CloseCode,
  ErrorCode,
  ServerMessageType,
} from '../../libs/protocol/src';

import { ANONYMOUS_COOKIE } from '../../libs/nest/src/config/app-config';
import { OPENAPI_FILE, openApiDocument } from '../../src/api-docs';
import { startApp } from '../support/app';
import { spawnServer } from '../support/server-process';

const ROOT = resolve(__dirname, '../..');
/** `DiagnosticSeverity.Error` of the parser's diagnostics (Spectral's numbering). */
const ERROR_SEVERITY = 0;
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Every Markdown file the repository ships (tracked, or new in this checkout), but dependencies. */
function markdownFiles(): string[] {
  const listed = execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return listed
    .split('\n')
    .filter(
      (path) => path !== '' && !path.includes('node_modules/') && existsSync(join(ROOT, path)),
    );
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const [, heading] of markdown.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

/** `[text](target)` links outside code blocks and code spans. */
function links(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map(([, target]) => target);
}

/** Names the configuration reads (`int(env, 'PORT', …)`, `raw(env, 'HOST')`, …). */
function configVariables(): string[] {
  const source = read('libs/nest/src/config/config.schema.ts');
  return [
    ...new Set([...source.matchAll(/\(\s*env,\s*'([A-Z][A-Z0-9_]+)'/g)].map(([, name]) => name)),
  ];
}

describe('documentation', () => {
  const files = markdownFiles();

  it('ships every document the README points to, and a README under 12 KB', () => {
    for (const doc of [
      'docs/protocol.md',
      'docs/configuration.md',
      'docs/operations.md',
      'docs/sdk.md',
      'docs/architecture.md',
      'docs/BENCHMARKS.md',
      'CHANGELOG.md',
      'CONTRIBUTING.md',
    ]) {
      expect(files).toContain(doc);
    }
    expect(statSync(join(ROOT, 'README.md')).size).toBeLessThan(12 * 1024);
  });

  it('has no link that leaves the repository or misses its target', () => {
    const broken: string[] = [];
    for (const file of files) {
      const markdown = read(file);
      for (const target of links(markdown)) {
        if (/^[a-z]+:/.test(target)) {
          broken.push(`${file}: ${target} (outside the repository)`);
          continue;
        }
        const [path, anchor] = target.split('#');
        const absolute = path === '' ? join(ROOT, file) : resolve(ROOT, dirname(file), path);
        if (relative(ROOT, absolute).startsWith('..') || !existsSync(absolute)) {
          broken.push(`${file}: ${target} (no such file in the repository)`);
        } else if (anchor !== undefined && absolute.endsWith('.md')) {
          if (!anchors(readFileSync(absolute, 'utf8')).has(anchor)) {
            broken.push(`${file}: ${target} (no such heading)`);
          }
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('cites nothing outside the repository, in documents or code', () => {
    // `git grep` exits 1 when nothing matches, which is the pass.
    const matches = spawnSync(
      'git',
      [
        'grep',
        '-n',
        '-I',
        '-E',
        'SPEC §|\\.\\./shared/|STYLE\\.md',
        '--',
        '.',
        ':!test/system/docs.e2e-spec.ts',
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(matches.stderr).toBe('');
    expect(matches.stdout).toBe('');
  });

  it('documents every configuration variable the server reads, and no other', () => {
    const doc = read('docs/configuration.md');
    const variables = configVariables();
    expect(variables.length).toBeGreaterThan(30);
    expect(variables.filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
    const documented = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)].map(([, name]) => name);
    expect(documented.filter((name) => !variables.includes(name))).toEqual([]);
  });

  it('documents every metric the server exports', () => {
    const source = read('libs/nest/src/metrics/metrics.service.ts');
    const metrics = [...source.matchAll(/name: '([a-z_]+)'/g)].map(([, name]) => name);
    expect(metrics.length).toBeGreaterThan(15);
    const doc = read('docs/operations.md');
    expect(metrics.filter((name) => !doc.includes(name))).toEqual([]);
  });

  it('documents every message type, close code and error code of the protocol package', () => {
    const doc = read('docs/protocol.md');
    const closeCodes = doc.slice(doc.indexOf('## Close codes'));
    const inCode = (term: string): boolean =>
      [...doc.matchAll(/`([^`\n]+)`/g)].some(([, span]) => span.split(/[ {]/, 1)[0] === term);
    const missing = [
      ...[...CLIENT_MESSAGE_TYPES, ...Object.values(ServerMessageType)].filter((t) => !inCode(t)),
      ...Object.values(ErrorCode).filter((code) => !inCode(code)),
      ...Object.values(CloseCode)
        .filter((code) => !new RegExp(`^\\| [^|]*\\b${code}\\b`, 'm').test(closeCodes))
        .map(String),
    ];
    expect(missing).toEqual([]);
  });

  describe('the AsyncAPI document of the WebSocket protocol (docs/asyncapi.yaml)', () => {
    let parsed: Awaited<ReturnType<Parser['parse']>>;
    beforeAll(async () => {
      parsed = await new Parser().parse(read('docs/asyncapi.yaml'));
    });
    /** Message names per operation action: `receive` (what clients send), `send` (the server's). */
    const names = (action: 'send' | 'receive'): string[] =>
      parsed
        .document!.operations()
        .all()
        .filter((operation) => operation.action() === action)
        .flatMap((operation) =>
          operation
            .messages()
            .all()
            .map((message) => message.name() ?? ''),
        );

    it('is valid AsyncAPI 3', () => {
      const errors = parsed.diagnostics.filter((d) => Number(d.severity) === ERROR_SEVERITY);
      expect(errors.map((d) => `${d.path.join('.')}: ${d.message}`)).toEqual([]);
      expect(parsed.document?.version()).toBe('3.0.0');
    });

    it('has every message type of the protocol package, in the right direction', () => {
      expect(names('receive').sort()).toEqual([...CLIENT_MESSAGE_TYPES].sort());
      const sent = names('send');
      expect(Object.values(ServerMessageType).filter((type) => !sent.includes(type))).toEqual([]);
    });

    it('names every error code and close code', () => {
      const error = parsed
        .document!.messages()
        .all()
        .find((message) => message.name() === ServerMessageType.Error);
      const codes = error?.payload()?.properties()?.data?.properties()?.code?.enum();
      expect([...(codes ?? [])].sort()).toEqual(Object.values(ErrorCode).sort());
      const channel = parsed.document!.channels().all()[0];
      const described = channel.description() ?? '';
      expect(Object.values(CloseCode).filter((code) => !described.includes(String(code)))).toEqual(
        [],
      );
    });

    it('offers on every server the ways a client authenticates: ticket, Bearer, cookie, guest cookie', () => {
      const servers = parsed.document!.servers().all();
      expect(servers.length).toBeGreaterThan(0);
      for (const server of servers) {
        const schemes = server
          .security()
          .flatMap((requirement) => requirement.all().map((entry) => entry.scheme()))
          .map((scheme) => [scheme.type(), scheme.in(), scheme.name() ?? scheme.scheme()]);
        expect(schemes).toEqual([
          ['httpApiKey', 'query', 'ticket'],
          ['http', undefined, 'bearer'],
          ['httpApiKey', 'cookie', 'AUTH_COOKIE'],
          ['httpApiKey', 'cookie', ANONYMOUS_COOKIE],
        ]);
      }
    });
  });

  describe('the OpenAPI document of the HTTP API (docs/openapi.json)', () => {
    it('is what the application builds from its controllers (npm run openapi writes it)', async () => {
      const app = await startApp({
        BROADCAST_API_KEY: 'x'.repeat(32),
        ADMIN_TOKEN: 'y'.repeat(32),
      });
      try {
        const built = JSON.parse(JSON.stringify(openApiDocument(app.app))) as unknown;
        expect(built).toEqual(JSON.parse(read(OPENAPI_FILE)));
      } finally {
        await app.close();
      }
    });

    it('documents every route the server answers', () => {
      const document = JSON.parse(read(OPENAPI_FILE)) as { paths: Record<string, object> };
      expect(Object.keys(document.paths).sort()).toEqual([
        '/admin/trace',
        '/api/broadcast',
        '/auth/anonymous',
        '/auth/dev-token',
        '/auth/logout',
        '/auth/ws-ticket',
        '/health/live',
        '/health/ready',
        '/metrics',
      ]);
    });

    it('is served with Swagger UI at /docs in development only', async () => {
      const dev = await spawnServer({
        NODE_ENV: 'development',
        BROADCAST_API_KEY: 'x'.repeat(32),
        ADMIN_TOKEN: 'y'.repeat(32),
      });
      try {
        const page = await fetch(`${dev.http}/docs`);
        expect(page.status).toBe(200);
        expect(await page.text()).toMatch(/swagger-ui/i);
        const served = await fetch(`${dev.http}/docs/openapi.json`);
        expect(await served.json()).toEqual(JSON.parse(read(OPENAPI_FILE)));
      } finally {
        await dev.stop();
      }
      const production = await spawnServer({
        NODE_ENV: 'production',
        JWT_SECRET: 'x'.repeat(40),
        METRICS_TOKEN: 'm'.repeat(20),
        ALLOWED_ORIGINS: 'https://app.example.com',
      });
      try {
        expect((await fetch(`${production.http}/docs`)).status).toBe(404);
        expect((await fetch(`${production.http}/docs/openapi.json`)).status).toBe(404);
      } finally {
        await production.stop();
      }
    });
  });
});
