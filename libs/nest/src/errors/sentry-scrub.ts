import type { Breadcrumb, Event } from '@sentry/nestjs';

/** What a scrubbed secret becomes (Sentry's own placeholder). */
export const FILTERED = '[Filtered]';

/**
 * Request headers that carry a credential: never sent. `x-switchboard-connection` names an event
 * stream that its `POST`s may write to.
 */
const SECRET_HEADER =
  /^(authorization|proxy-authorization|cookie|set-cookie|x-admin-.*|x-api-key|x-switchboard-connection)$/i;

/** Keys whose value is a secret wherever they sit (extra, contexts, a request's data). */
const SECRET_KEY =
  /^(authorization|proxy-authorization|cookies?|set-cookie|x-admin-.*|password|secret|token|access_?token|refresh_?token|send_?token|ticket|api_?key)$/i;

/** A cookie name (RFC 6265 token). */
const NAME = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** A value in text: up to a separator or a quote. */
const VALUE = '[^\\s;,"\'&#<>]+';

/** Text rules, in order: each rewrites what looks like a secret and keeps what says where it was. */
const RULES: ReadonlyArray<[RegExp, string | ((match: string) => string)]> = [
  // A JWT: three base64url parts, the first a JSON object (`{"…` is `eyJ…`).
  [/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, FILTERED],
  // A header written out: `Authorization: …`, `"cookie":"…"`, `set-cookie=…`.
  [
    /\b(authorization|proxy-authorization|set-cookie|cookie|x-admin-[\w-]+)(["']?\s*[:=]\s*["']?)[^\r\n"']*/gi,
    `$1$2${FILTERED}`,
  ],
  [/\b(Bearer\s+)[^\s,;"']+/gi, `$1${FILTERED}`],
  // A secret in JSON or a query: `"ticket":"…"`, `ticket=…`.
  [/("(?:ticket|token|accessToken|sendToken|secret|password)"\s*:\s*")[^"]*/gi, `$1${FILTERED}`],
  [new RegExp(`\\b(ticket|token|access_token)=${VALUE}`, 'gi'), `$1=${FILTERED}`],
  // A cookie list: `a=1; b=2`.
  [
    new RegExp(`${NAME}=[^;\\s,"']*(?:;\\s*${NAME}=[^;\\s,"']*)+`, 'g'),
    (list) => list.replace(new RegExp(`(${NAME})=[^;\\s,"']*`, 'g'), `$1=${FILTERED}`),
  ],
  // A query string, in a URL or alone: `…?secret=…&…`, and whatever follows the `?` of a URL.
  [/(\b[a-z][a-z\d+.-]*:\/\/[^\s?#"'<>]*)\?[^\s#"'<>]*/gi, '$1'],
  [/\?[\w.%[\]-]+=[^\s#"'<>]*/g, ''],
];

/**
 * `text` without what looks like a secret: a JWT, `Bearer <token>`, `ticket=<ticket>`, a header
 * with a credential written out, a cookie list (`a=1; b=2`) or one of `cookieNames` with its
 * value, a query string. What stays says where the secret was (`Bearer [Filtered]`).
 */
export function scrubText(text: string, cookieNames: readonly string[] = []): string {
  let scrubbed = text;
  for (const [pattern, replacement] of RULES) {
    scrubbed =
      typeof replacement === 'string'
        ? scrubbed.replace(pattern, replacement)
        : scrubbed.replace(pattern, replacement);
  }
  for (const name of cookieNames) {
    scrubbed = scrubbed.replace(
      new RegExp(`(^|[^\\w-])(${escape(name)})=${VALUE}`, 'g'),
      `$1$2=${FILTERED}`,
    );
  }
  return scrubbed;
}

/**
 * The event as it may leave: the request without cookies, query string or credential headers, its
 * URL without a query, and every string anywhere (message, exception values, extra, tags,
 * contexts, breadcrumbs) through `scrubText`; values under a secret's key (`token`, `cookie`…)
 * are replaced whole. A pure function: `event` is not changed.
 */
export function scrubEvent<E extends Event>(event: E, cookieNames: readonly string[] = []): E {
  const scrubbed = scrubValue(event, cookieNames, 0) as E;
  if (scrubbed.request !== undefined) {
    const { cookies: _cookies, query_string: _query, headers, url, ...request } = scrubbed.request;
    scrubbed.request = {
      ...request,
      ...(url === undefined ? {} : { url: withoutQuery(url) }),
      ...(headers === undefined ? {} : { headers: withoutSecretHeaders(headers) }),
    };
  }
  if (scrubbed.breadcrumbs !== undefined) {
    scrubbed.breadcrumbs = scrubbed.breadcrumbs.map((crumb) => urlWithoutQuery(crumb));
  }
  return scrubbed;
}

/** A breadcrumb as it may be kept: as in `scrubEvent`, its `data.url` without a query. */
export function scrubBreadcrumb(
  breadcrumb: Breadcrumb,
  cookieNames: readonly string[] = [],
): Breadcrumb {
  return urlWithoutQuery(scrubValue(breadcrumb, cookieNames, 0) as Breadcrumb);
}

/** Events are JSON-like and shallow; a deeper value is cut rather than walked. */
const MAX_DEPTH = 16;

function scrubValue(value: unknown, cookieNames: readonly string[], depth: number): unknown {
  if (typeof value === 'string') {
    return scrubText(value, cookieNames);
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  if (depth >= MAX_DEPTH) {
    return FILTERED;
  }
  if (Array.isArray(value)) {
    return value.map((item) => scrubValue(item, cookieNames, depth + 1));
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      SECRET_KEY.test(key) && item !== undefined && item !== null
        ? FILTERED
        : scrubValue(item, cookieNames, depth + 1),
    ]),
  );
}

function urlWithoutQuery(breadcrumb: Breadcrumb): Breadcrumb {
  const url = breadcrumb.data?.url as unknown;
  return typeof url === 'string'
    ? { ...breadcrumb, data: { ...breadcrumb.data, url: withoutQuery(url) } }
    : breadcrumb;
}

function withoutQuery(url: string): string {
  return url.replace(/[?#].*$/s, '');
}

function withoutSecretHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !SECRET_HEADER.test(name)));
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
