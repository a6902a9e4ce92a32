/**
 * C0 controls except tab and newline, DEL and the C1 controls, and the bidirectional embedding,
 * override and isolate characters (which can make text display differently from what it says).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g;

/** Removes unsafe control and bidi characters and NFC-normalizes. Does not HTML-escape. */
export function sanitizeText(text: string): string {
  return text.replace(UNSAFE, '').normalize('NFC');
}

/** Keys that must never reach application code, at any depth. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * A copy of a parsed JSON body with every string `sanitizeText`ed (keys too), for message types
 * that have no DTO of Switchboard's own (a host application's). Refused, naming the place: a key
 * that may not reach application code (`__proto__`, `constructor`, `prototype`), and nesting
 * deeper than `maxDepth`.
 */
export function sanitizeJson(
  value: unknown,
  maxDepth: number,
): { ok: true; value: unknown } | { ok: false; path: string; problem: string } {
  let refusal: { path: string; problem: string } | undefined;
  const copy = (node: unknown, path: string, depth: number): unknown => {
    if (refusal !== undefined) {
      return undefined;
    }
    if (typeof node === 'string') {
      return sanitizeText(node);
    }
    if (typeof node !== 'object' || node === null) {
      return node;
    }
    if (depth > maxDepth) {
      refusal = { path: path || 'data', problem: `is nested deeper than ${maxDepth} levels` };
      return undefined;
    }
    if (Array.isArray(node)) {
      return node.map((item, index) => copy(item, `${path}[${index}]`, depth + 1));
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(node)) {
      const at = path ? `${path}.${key}` : key;
      if (FORBIDDEN_KEYS.has(key)) {
        refusal = { path: at, problem: 'is not allowed' };
        return undefined;
      }
      out[sanitizeText(key)] = copy(item, at, depth + 1);
    }
    return out;
  };
  const result = copy(value, '', 1);
  return refusal === undefined ? { ok: true, value: result } : { ok: false, ...refusal };
}
