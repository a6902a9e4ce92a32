/** Parses the Prometheus text format into `name{label="v",…}` → value, labels sorted by name. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) {
      throw new Error(`not a Prometheus sample line: ${line}`);
    }
    const [, name, labels, value] = match;
    const sorted = labels
      ? [...labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
          .map(([, key, v]) => `${key}="${v}"`)
          .sort()
          .join(',')
      : '';
    samples.set(sorted ? `${name}{${sorted}}` : name, Number(value));
  }
  return samples;
}

export async function scrape(baseUrl: string, token?: string): Promise<Map<string, number>> {
  const response = await fetch(`${baseUrl}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (response.status !== 200) {
    throw new Error(`/metrics answered ${response.status}`);
  }
  return parseMetrics(await response.text());
}

/** after − before for one sample (missing counts as 0). */
export function delta(
  before: Map<string, number>,
  after: Map<string, number>,
  key: string,
): number {
  return (after.get(key) ?? 0) - (before.get(key) ?? 0);
}
