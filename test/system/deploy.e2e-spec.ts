/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return --
   the manifests are free-form YAML; the assertions below are the type checks. */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { startApp } from '../support/app';

const ROOT = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

/** The shipped deployment files parse and agree with the server (docs/operations.md, Deployment). */
describe('deployment files', () => {
  it('docker-compose.yml is valid for docker compose', () => {
    const env = { ...process.env, JWT_SECRET: 'x'.repeat(40), METRICS_TOKEN: 'm'.repeat(20) };
    const plugin = spawnSync('docker', ['compose', 'version'], { env });
    const [command, args] = plugin.status === 0 ? ['docker', ['compose']] : ['docker-compose', []];
    const result = spawnSync(command, [...args, '-f', join(ROOT, 'docker-compose.yml'), 'config'], {
      env,
      encoding: 'utf8',
    });
    if (result.error) {
      throw new Error(
        `neither "docker compose" nor "docker-compose" runs here (apt-get install docker-compose): ${result.error.message}`,
      );
    }
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    const config = parse(result.stdout) as Doc;
    expect(Object.keys(config.services).sort()).toEqual([
      'nginx',
      'redis',
      'switchboard-1',
      'switchboard-2',
    ]);
    expect(config.services['switchboard-1'].environment.REDIS_URL).toBe('redis://redis:6379');
    // Redis persists (AOF) on a volume: a restart does not lose what only Redis holds.
    expect(config.services.redis.command.join(' ')).toMatch(/--appendonly yes/);
    expect(JSON.stringify(config.services.redis.volumes)).toContain('/data');
    expect(JSON.stringify(config.services.nginx.volumes)).toContain('deploy/nginx.conf');
  });

  it('the Kubernetes manifests have probes, a grace period above SHUTDOWN_TIMEOUT_MS and a PDB', () => {
    const docs = readdirSync(join(ROOT, 'deploy/k8s'))
      .filter((file) => file.endsWith('.yaml'))
      .flatMap((file) =>
        parseAllDocuments(read(`deploy/k8s/${file}`)).map((doc) => doc.toJS() as Doc),
      );
    const byKind = (kind: string) => docs.filter((doc) => doc.kind === kind);
    const [deployment] = byKind('Deployment');
    const [config] = byKind('ConfigMap');
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    expect(container.livenessProbe.httpGet.path).toBe('/health/live');
    expect(container.readinessProbe.httpGet.path).toBe('/health/ready');
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      Number(config.data.SHUTDOWN_TIMEOUT_MS),
    );
    expect(container.envFrom).toEqual([
      { configMapRef: { name: 'switchboard' } },
      { secretRef: { name: 'switchboard' } },
    ]);
    expect(byKind('PodDisruptionBudget')).toHaveLength(1);
    expect(byKind('Service')[0].spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  it('scrapes with METRICS_TOKEN from the Secret (a PodMonitor), not with annotations that get 401', () => {
    const docs = readdirSync(join(ROOT, 'deploy/k8s'))
      .filter((file) => file.endsWith('.yaml'))
      .flatMap((file) =>
        parseAllDocuments(read(`deploy/k8s/${file}`)).map((doc) => doc.toJS() as Doc),
      );
    const [deployment] = docs.filter((doc) => doc.kind === 'Deployment');
    const [secret] = docs.filter((doc) => doc.kind === 'Secret');
    const [monitor] = docs.filter((doc) => doc.kind === 'PodMonitor');
    expect(JSON.stringify(deployment.spec.template.metadata)).not.toMatch(/prometheus\.io/);
    expect(monitor.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    const [endpoint] = monitor.spec.podMetricsEndpoints;
    const ports = deployment.spec.template.spec.containers[0].ports.map((port: Doc) => port.name);
    expect(ports).toContain(endpoint.port);
    expect(endpoint.path).toBe('/metrics');
    expect(endpoint.authorization.type).toBe('Bearer');
    expect(endpoint.authorization.credentials.name).toBe(secret.metadata.name);
    expect(Object.keys(secret.stringData)).toContain(endpoint.authorization.credentials.key);
    expect(endpoint.authorization.credentials.key).toBe('METRICS_TOKEN');
  });

  describe('the dashboard and the alert rules', () => {
    const rules = (parse(read('deploy/prometheus/alerts.yml')) as Doc).groups.flatMap(
      (group: Doc) => group.rules,
    ) as Doc[];
    const dashboard = JSON.parse(read('deploy/grafana/switchboard.json')) as Doc;
    const panels = (dashboard.panels as Doc[]).filter((panel) => panel.type !== 'row');
    const queries = panels.flatMap((panel) => (panel.targets as Doc[]).map((t) => String(t.expr)));
    /** Metric names in PromQL: ours and the Node process metrics, not functions or labels. */
    const metricsIn = (expr: string): string[] =>
      expr.match(/\b(?:ws|redis|process|nodejs)_[a-z0-9_]+\b/g) ?? [];
    let exported: Set<string>;

    beforeAll(async () => {
      const app = await startApp(
        { REDIS_URL: 'redis://127.0.0.1:1', REDIS_PREFIX: 'deploy-test:' },
        { waitForRedis: false },
      );
      try {
        // Labelled counters have no samples until first used: read the declared names instead.
        const text = await (await fetch(`${app.http}/metrics`)).text();
        exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map(([, name]) => name));
      } finally {
        await app.close();
      }
    });
    const isExported = (name: string): boolean =>
      exported.has(name) || exported.has(name.replace(/_(bucket|sum|count)$/, ''));

    it('query only metrics the server exports', () => {
      const used = new Set(
        [...queries, ...rules.map((rule) => String(rule.expr))].flatMap(metricsIn),
      );
      expect(used.size).toBeGreaterThan(15);
      expect([...used].filter((name) => !isExported(name))).toEqual([]);
    });

    it('cover every Switchboard metric on the dashboard', () => {
      const ours = [...exported].filter((name) => /^(ws|redis)_/.test(name));
      const shown = new Set(
        queries.flatMap(metricsIn).map((name) => name.replace(/_(bucket|sum|count)$/, '')),
      );
      expect(ours.filter((name) => !shown.has(name))).toEqual([]);
    });

    it('give every alert a runbook entry in docs/operations.md and a panel over its metrics', () => {
      expect(rules.map((rule) => rule.alert)).toEqual(
        expect.arrayContaining([
          'SwitchboardConnectionSpike',
          'SwitchboardInstanceDown',
          'SwitchboardRedisDown',
          'SwitchboardMessageErrorRate',
        ]),
      );
      const operations = read('docs/operations.md');
      const shown = new Set(queries.flatMap(metricsIn));
      for (const rule of rules) {
        expect([rule.alert, rule.annotations.runbook]).toEqual([
          rule.alert,
          `docs/operations.md#${String(rule.alert).toLowerCase()}`,
        ]);
        expect([rule.alert, operations.includes(`### ${rule.alert}\n`)]).toEqual([
          rule.alert,
          true,
        ]);
        const metrics = metricsIn(String(rule.expr));
        expect([
          rule.alert,
          metrics.every((name) => shown.has(name)) || String(rule.expr).startsWith('up{'),
        ]).toEqual([rule.alert, true]);
      }
    });
  });
});
