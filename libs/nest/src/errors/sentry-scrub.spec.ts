import type { ErrorEvent } from '@sentry/nestjs';
import { FILTERED, scrubBreadcrumb, scrubEvent, scrubText } from './sentry-scrub';

const JWT =
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTkwMDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const TICKET = 'tk_3fa85f6457174562b3fc2c963f66afa6';

describe('scrubText', () => {
  it.each([
    ['a JWT anywhere', `token was ${JWT}.`, `token was ${FILTERED}.`],
    ['a Bearer credential', 'sent Bearer abc.def-123 twice', `sent Bearer ${FILTERED} twice`],
    ['a ticket in a query', `/ws?ticket=${TICKET}&v=1`, '/ws'],
    ['a ticket alone', `ticket=${TICKET}; retry`, `ticket=${FILTERED}; retry`],
    [
      'a ticket in JSON',
      `{"ticket":"${TICKET}","room":"a"}`,
      `{"ticket":"${FILTERED}","room":"a"}`,
    ],
    ['an Authorization header', 'Authorization: Basic dXNlcjpwYXNz', `Authorization: ${FILTERED}`],
    ['a Cookie header', 'cookie: sid=s3cr3t; theme=dark', `cookie: ${FILTERED}`],
    ['a cookie list', 'had sid=s3cr3t; theme=dark', `had sid=${FILTERED}; theme=${FILTERED}`],
    [
      'a query string of a URL',
      'GET https://h.test/p/q?secret=1&b=2#top failed',
      'GET https://h.test/p/q#top failed',
    ],
    ['a query string of a path', 'GET /api/x?secret=hunter2 failed', 'GET /api/x failed'],
    ['an admin header', '{"x-admin-user":"root"}', `{"x-admin-user":"${FILTERED}"}`],
  ])('filters %s', (_name, text, expected) => {
    expect(scrubText(text)).toBe(expected);
  });

  it('filters the value of a named cookie, alone', () => {
    expect(scrubText('session sb_auth=v4lue expired', ['sb_auth'])).toBe(
      `session sb_auth=${FILTERED} expired`,
    );
    expect(scrubText('other_sb_auth=v4lue', ['sb_auth'])).toBe('other_sb_auth=v4lue');
  });

  it('keeps ordinary text', () => {
    const text = 'Cannot read properties of undefined (reading "id") at room a=b';
    expect(scrubText(text)).toBe(text);
  });
});

describe('scrubEvent', () => {
  const event: ErrorEvent = {
    type: undefined,
    message: `failed with ${JWT}`,
    exception: { values: [{ type: 'Error', value: `upgrade /ws?ticket=${TICKET} failed` }] },
    request: {
      method: 'GET',
      url: 'https://h.test/api/x?secret=hunter2',
      query_string: 'secret=hunter2',
      cookies: { sid: 's3cr3t' },
      headers: {
        authorization: `Bearer ${JWT}`,
        cookie: 'sid=s3cr3t',
        'set-cookie': 'sid=s3cr3t',
        'x-admin-user': 'root',
        'x-switchboard-connection': 'c1',
        'user-agent': 'test',
      },
    },
    extra: { token: 'abc', nested: { note: `Bearer ${JWT}`, password: 'pw' } },
    tags: { route: 'GET /api/x?secret=hunter2' },
    breadcrumbs: [{ message: 'fetch', data: { url: 'https://h.test/a?ticket=t#f', status: 200 } }],
  };

  it('sends nothing of a credential, a cookie or a query string', () => {
    const scrubbed = scrubEvent(event);
    const text = JSON.stringify(scrubbed);
    for (const secret of [JWT, TICKET, 's3cr3t', 'hunter2', 'root', '"abc"', '"pw"', 'ticket=t']) {
      expect(text).not.toContain(secret);
    }
    expect(scrubbed.request).toEqual({
      method: 'GET',
      url: 'https://h.test/api/x',
      headers: { 'user-agent': 'test' },
    });
    expect(scrubbed.exception?.values?.[0].value).toBe('upgrade /ws failed');
    expect(scrubbed.extra).toEqual({
      token: FILTERED,
      nested: { note: `Bearer ${FILTERED}`, password: FILTERED },
    });
    expect(scrubbed.tags).toEqual({ route: 'GET /api/x' });
    expect(scrubbed.breadcrumbs?.[0].data).toEqual({ url: 'https://h.test/a', status: 200 });
  });

  it('leaves its argument as it was', () => {
    const before = JSON.stringify(event);
    scrubEvent(event);
    expect(JSON.stringify(event)).toBe(before);
  });
});

describe('scrubBreadcrumb', () => {
  it('drops the query of data.url and filters its texts', () => {
    expect(
      scrubBreadcrumb({ message: `sent ${JWT}`, data: { url: '/ws?ticket=x', method: 'GET' } }),
    ).toEqual({ message: `sent ${FILTERED}`, data: { url: '/ws', method: 'GET' } });
  });
});
