import { startApp, type TestApp } from '../support/app';

const API_KEY = 'broadcast-key-that-is-at-least-32-chars';
const nested = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

/** Bodies no route may answer with 500: each gets a 400 (or 413 when too large). */
const BAD_BODIES: Array<[string, string, number]> = [
  ['malformed JSON', '{"userId":', 400],
  ['5,000 levels of arrays', `{"userId":${nested(5000)}}`, 400],
  ['33 levels of objects', `{"data":${'{"a":'.repeat(33)}1${'}'.repeat(33)}}`, 400],
  ['a JSON array', '[1,2]', 400],
  ['JSON null', 'null', 400],
  ['a JSON string', '"x"', 400],
  ['a __proto__ key', '{"__proto__":{"admin":true}}', 400],
  ['a constructor key', '{"constructor":{"prototype":{}}}', 400],
  ['wrong field types', '{"userId":5,"ttl":"long","to":7,"event":[],"data":null}', 400],
  ['a body over 16 KiB', `{"userId":"${'a'.repeat(17_000)}"}`, 413],
];

/** Hostile bodies on every JSON route: a clear 4xx, never a 500 or an error log (docs/protocol.md, HTTP API). */
describe('HTTP input', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp({ BROADCAST_API_KEY: API_KEY });
  });
  afterAll(() => app.close());

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${app.http}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });

  describe.each([
    ['/auth/dev-token', {}],
    ['/api/broadcast', { authorization: `Bearer ${API_KEY}` }],
  ])('POST %s', (path, headers) => {
    it.each(BAD_BODIES)('answers %s with its status and logs no error', async (_, body, status) => {
      const errorsBefore = app.logs.parsed().filter((line) => line.level === 'error').length;
      const response = await post(path, body, headers);
      expect(response.status).toBe(status);
      expect(await response.json()).toMatchObject({ statusCode: status });
      const errorsAfter = app.logs.parsed().filter((line) => line.level === 'error').length;
      expect(errorsAfter).toBe(errorsBefore);
    });
  });

  it('checks the broadcast key before it reads the body: 401 without details', async () => {
    for (const body of ['{"to":{}}', '{"userId":', `{"a":${nested(5000)}}`]) {
      const response = await post('/api/broadcast', body);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      const answer = (await response.json()) as { message: unknown };
      expect(answer.message).toBe('missing or wrong Authorization: Bearer <BROADCAST_API_KEY>');
    }
    const wrongKey = await post('/api/broadcast', '{"to":{}}', {
      authorization: `Bearer ${'x'.repeat(API_KEY.length)}`,
    });
    expect(wrongKey.status).toBe(401);
  });

  it('validates the body once the key is right, naming the fields', async () => {
    const response = await post('/api/broadcast', '{"to":{}}', {
      authorization: `Bearer ${API_KEY}`,
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(await response.json())).toMatch(/event/);
  });
});

describe('POST /api/broadcast while BROADCAST_API_KEY is unset', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(() => app.close());

  it.each([
    ['a valid body', '{"to":{"all":true},"event":"x","data":1}'],
    ['a bad body', '{"to":'],
    ['a deep body', nested(5000)],
  ])('is 404 for %s, with or without a key', async (_, body) => {
    for (const authorization of [undefined, `Bearer ${API_KEY}`]) {
      const response = await fetch(`${app.http}/api/broadcast`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(authorization ? { authorization } : {}),
        },
        body,
      });
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
    }
  });
});

describe('POST /api/broadcast throttling', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp(
      { BROADCAST_API_KEY: API_KEY, TRUST_PROXY: 'true' },
      { limits: { broadcastApiCallsPerSecond: 5 } },
    );
  });
  afterAll(() => app.close());

  const publish = (from: string) =>
    fetch(`${app.http}/api/broadcast`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${API_KEY}`,
        'x-forwarded-for': from,
      },
      body: '{"to":{"all":true},"event":"tick","data":1}',
    });

  it('answers 429 with Retry-After past its calls per second from one address, not others', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await publish('10.1.1.1')).status).toBe(202);
    }
    const refused = await publish('10.1.1.1');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as { message: string }).message).toMatch(
      /at most 5 requests per 1 s per address/,
    );
    expect((await publish('10.2.2.2')).status).toBe(202);
  });
});
