/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return --
   the manifests are free-form YAML; the assertions below are the type checks. */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { MetricsService } from '../../libs/nest/src/metrics/metrics.service';
import { startApp } from '../support/app';
import { parseMetrics } from '../support/prometheus';

const ROOT = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

/** Labels Prometheus adds to every series it scrapes. */
const SCRAPE_LABELS = ['instance', 'job'];

interface Selector {
  metric: string;
  /** The labels its matchers name. */
  labels: string[];
}

interface Grouping {
  clause: 'by' | 'without';
  labels: string[];
  /** The selectors of the expression it aggregates. */
  over: Selector[];
}

const AGGREGATIONS = new Set([
  ...['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values'],
  ...['bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio'],
]);
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan']);

/**
 * The series selectors and the `by` / `without` clauses of a PromQL expression (or of a promtool
 * input series, which is a selector): as much PromQL as checking names and labels needs.
 */
function parsePromQL(expr: string): { selectors: Selector[]; groupings: Grouping[] } {
  const tokens =
    expr
      .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
      .replace(/\[[^\]]*\]/g, ' ')
      .replace(/#.*$/gm, '')
      .match(/[a-zA-Z_:][\w:]*|\d[\d.]*(?:e[+-]?\d+)?(?:ms|[smhdwy])*|""|[^\s\w]/g) ?? [];
  const isName = (token: string | undefined) => token !== undefined && /^[a-zA-Z_:]/.test(token);
  const closing = (open: number): number => {
    let depth = 0;
    for (let i = open; i < tokens.length; i++) {
      depth += tokens[i] === '(' ? 1 : tokens[i] === ')' ? -1 : 0;
      if (depth === 0) {
        return i;
      }
    }
    return tokens.length;
  };
  const labelList = (open: number): string[] =>
    tokens.slice(open + 1, closing(open)).filter(isName);

  const selectors: (Selector & { at: number })[] = [];
  const clauses: { clause: 'by' | 'without'; labels: string[]; from: number; to: number }[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const [token, next] = [tokens[i], tokens[i + 1]];
    if (LABEL_LISTS.has(token)) {
      // Labels, not selectors. A trailing `by (…)` was read with its aggregation, below.
      i = next === '(' ? closing(i + 1) : i;
    } else if (AGGREGATIONS.has(token) && (next === '(' || next === 'by' || next === 'without')) {
      const before = next === 'by' || next === 'without';
      const open = before ? closing(i + 2) + 1 : i + 1;
      const close = closing(open);
      const clause = (before ? next : tokens[close + 1]) as Grouping['clause'];
      if (clause === 'by' || clause === 'without') {
        const labels = labelList(before ? i + 2 : close + 2);
        clauses.push({ clause, labels, from: open, to: close });
      }
      i = open;
    } else if (
      (isName(token) && !KEYWORDS.has(token.toLowerCase()) && next !== '(') ||
      token === '{'
    ) {
      const at = i;
      const labels: string[] = [];
      const open = token === '{' ? i : next === '{' ? i + 1 : -1;
      if (open >= 0) {
        for (i = open + 1; i < tokens.length && tokens[i] !== '}'; i++) {
          if (isName(tokens[i]) && (tokens[i - 1] === '{' || tokens[i - 1] === ',')) {
            labels.push(tokens[i]);
          }
        }
      }
      selectors.push({ metric: token === '{' ? '' : token, labels, at });
    }
  }
  const plain = ({ metric, labels }: Selector): Selector => ({ metric, labels });
  return {
    selectors: selectors.map(plain),
    groupings: clauses.map(({ clause, labels, from, to }) => ({
      clause,
      labels,
      over: selectors.filter(({ at }) => at > from && at < to).map(plain),
    })),
  };
}

/** The shipped deployment files parse and agree with the server (docs/operations.md, Deployment). */
describe('deployment files', () => {
  const rules = (parse(read('deploy/prometheus/alerts.yml')) as Doc).groups.flatMap(
    (group: Doc) => group.rules,
  ) as Doc[];

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

  it('reads the PromQL that the dashboard and rule checks need', () => {
    expect(
      parsePromQL(
        'histogram_quantile(0.99, sum by (le, path) (rate(a_bucket{instance=~"$x", job="j"}[$__rate_interval])))' +
          ' / on (instance) group_left clamp_min(sum without (kind) (b_total offset 5m), 1) > bool 0.5',
      ),
    ).toEqual({
      selectors: [
        { metric: 'a_bucket', labels: ['instance', 'job'] },
        { metric: 'b_total', labels: [] },
      ],
      groupings: [
        {
          clause: 'by',
          labels: ['le', 'path'],
          over: [{ metric: 'a_bucket', labels: ['instance', 'job'] }],
        },
        { clause: 'without', labels: ['kind'], over: [{ metric: 'b_total', labels: [] }] },
      ],
    });
  });

  describe('the alert rules under promtool (Debian package prometheus)', () => {
    /** Runs promtool from the repository root; the output is in the assertion when it fails. */
    const promtool = (...args: string[]): { status: number | null; output: string } => {
      const result = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
      if (result.error) {
        throw new Error(
          `promtool does not run here (apt-get install prometheus; npm test installs it): ${result.error.message}`,
        );
      }
      return { status: result.status, output: result.stdout + result.stderr };
    };

    it('pass promtool check rules', () => {
      expect(promtool('check', 'rules', 'deploy/prometheus/alerts.yml')).toEqual({
        status: 0,
        output: expect.stringContaining('SUCCESS'),
      });
    });

    it('pass their unit tests (promtool test rules)', () => {
      expect(promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml')).toEqual({
        status: 0,
        output: expect.stringContaining('SUCCESS'),
      });
    });

    it('have a unit test where each alert fires and one where it stays quiet', () => {
      const tests = parse(read('deploy/prometheus/alerts.test.yml')) as Doc;
      expect(tests.rule_files).toEqual(['alerts.yml']);
      const cases = (tests.tests as Doc[]).flatMap((test) => test.alert_rule_test as Doc[]);
      const untested = rules
        .map((rule) => String(rule.alert))
        .flatMap((alert) => {
          const mine = cases.filter((c) => c.alertname === alert);
          return [
            ...(mine.some((c) => c.exp_alerts?.length > 0) ? [] : [`${alert} never fires`]),
            ...(mine.some((c) => !c.exp_alerts?.length) ? [] : [`${alert} never stays quiet`]),
          ];
        });
      expect(untested).toEqual([]);
    });
  });

  describe('the dashboard and the alert rules', () => {
    const dashboard = JSON.parse(read('deploy/grafana/switchboard.json')) as Doc;
    const panels = (dashboard.panels as Doc[]).filter((panel) => panel.type !== 'row');
    const queries = panels.flatMap((panel) => (panel.targets as Doc[]).map((t) => String(t.expr)));
    const ruleExprs = rules.map((rule) => String(rule.expr));
    const metricsIn = (expr: string): string[] => parsePromQL(expr).selectors.map((s) => s.metric);
    /** Metric families as `# TYPE` declares them (labelled counters have no samples until used). */
    let families: Set<string>;
    /** Each series name the server exports (a histogram's as _bucket, _sum, _count) → its labels. */
    const series = new Map<string, Set<string>>();

    beforeAll(async () => {
      const app = await startApp(
        { REDIS_URL: 'redis://127.0.0.1:1', REDIS_PREFIX: 'deploy-test:' },
        { waitForRedis: false },
      );
      try {
        const text = await (await fetch(`${app.http}/metrics`)).text();
        // A label appears on a sample only once a value has one: take the declared ones too.
        const declared = new Map(
          app.app
            .get(MetricsService)
            .registry.getMetricsAsArray()
            .map((metric) => [
              metric.name,
              (metric as { labelNames?: readonly string[] }).labelNames ?? [],
            ]),
        );
        const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)];
        families = new Set(types.map(([, name]) => name));
        const add = (name: string, labels: readonly string[]) =>
          series.set(name, new Set([...(series.get(name) ?? []), ...labels]));
        for (const [, name, type] of types) {
          const labels = declared.get(name) ?? [];
          if (type === 'histogram') {
            add(`${name}_bucket`, [...labels, 'le']);
          } else {
            add(name, type === 'summary' ? [...labels, 'quantile'] : labels);
          }
          if (type === 'histogram' || type === 'summary') {
            add(`${name}_sum`, labels);
            add(`${name}_count`, labels);
          }
        }
        for (const key of parseMetrics(text).keys()) {
          const [name, labels = ''] = key.split(/\{(.*)\}$/);
          add(
            name,
            [...labels.matchAll(/(?:^|,)([a-zA-Z_]\w*)="/g)].map(([, label]) => label),
          );
        }
      } finally {
        await app.close();
      }
    });

    /** The labels a series has once scraped: the server's, plus those Prometheus adds. */
    const labelsOf = (metric: string): Set<string> | undefined => {
      // Prometheus writes `up` itself, for every target.
      const own = metric === 'up' ? [] : series.get(metric);
      return own && new Set([...own, ...SCRAPE_LABELS]);
    };

    /** What in `expr` names a series or a label the server does not export, as sentences. */
    const unknownIn = (expr: string): string[] => {
      const { selectors, groupings } = parsePromQL(expr);
      return [
        ...selectors.flatMap(({ metric, labels }) => {
          const known = labelsOf(metric);
          if (!known) {
            return [`${metric} is not exported`];
          }
          return labels
            .filter((label) => label !== '__name__' && !known.has(label))
            .map((label) => `${metric} has no label ${label}`);
        }),
        ...groupings.flatMap(({ clause, labels, over }) =>
          over.flatMap(({ metric }) => {
            const known = labelsOf(metric);
            return labels
              .filter((label) => known && !known.has(label))
              .map((label) => `${clause} (${label}) over ${metric}, which has no label ${label}`);
          }),
        ),
      ];
    };

    it('query only metrics and labels the server exports', () => {
      const used = new Set([...queries, ...ruleExprs].flatMap(metricsIn));
      expect(used.size).toBeGreaterThan(15);
      // The label sets are the server's own, declared and sampled: two of them, for a start.
      expect(series.get('ws_connections_total')).toEqual(new Set(['outcome', 'transport']));
      expect(series.get('ws_delivery_lag_seconds_bucket')).toEqual(new Set(['path', 'le']));
      expect(
        [...queries, ...ruleExprs].flatMap((expr) =>
          unknownIn(expr).map((why) => `${why}: ${expr}`),
        ),
      ).toEqual([]);
    });

    it('unit-test the rules on series named and labelled as the server exports them', () => {
      const tests = parse(read('deploy/prometheus/alerts.test.yml')) as Doc;
      const inputs = (tests.tests as Doc[]).flatMap((test) =>
        (test.input_series as Doc[]).map((input) => String(input.series)),
      );
      expect(inputs.flatMap((input) => unknownIn(input).map((why) => `${why}: ${input}`))).toEqual(
        [],
      );
    });

    it('cover every Switchboard metric on the dashboard', () => {
      const ours = [...families].filter((name) => /^(ws|redis)_/.test(name));
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
