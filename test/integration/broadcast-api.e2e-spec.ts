import { startApp, TEST_ORIGIN, type TestApp } from '../support/app';
import { hsToken } from '../support/jwt';
import { BROADCAST_PATH_SPELLINGS as SPELLINGS, rawHttp } from '../support/raw-http';
import { connected, type TestClient } from '../support/ws-client';

const API_KEY = 'broadcast-key-that-is-at-least-32-chars';

/** The modes a deployment runs in: the key set or not, development or production. */
const MODES: Array<[string, Record<string, string>, boolean]> = [
  ['a key, development', { BROADCAST_API_KEY: API_KEY }, true],
  ['no key, development', {}, false],
  [
    'a key, production',
    {
      NODE_ENV: 'production',
      DEV_AUTH: 'false',
      BROADCAST_API_KEY: API_KEY,
      METRICS_TOKEN: 'metrics-token-0123456789',
    },
    true,
  ],
  [
    'no key, production',
    { NODE_ENV: 'production', DEV_AUTH: 'false', METRICS_TOKEN: 'metrics-token-0123456789' },
    false,
  ],
];

/**
 * The broadcast HTTP API decides on the route the router matched, never on the URL's text: no
 * spelling of the path reaches `BroadcastService` without the key (docs/broadcast.md, HTTP API).
 */
describe.each(MODES)('POST /api/broadcast with %s', (_, env, keyed) => {
  let app: TestApp;
  let listener: TestClient;

  beforeAll(async () => {
    app = await startApp(env);
    // Production has no dev tokens: the listener signs in with a token of the app's own secret.
    const token = await hsToken({ sub: 'listener' });
    listener = await connected(`${app.ws}?ticket=${(await app.ticket(token)).ticket}`, {
      origin: TEST_ORIGIN,
    });
  });
  afterAll(async () => {
    listener?.close();
    await app?.close();
  });

  const publish = (target: string, event: string, authorization?: string) =>
    rawHttp(app.port, {
      method: 'POST',
      target: target.replace('PORT', String(app.port)),
      headers: {
        'content-type': 'application/json',
        ...(authorization ? { authorization } : {}),
      },
      body: JSON.stringify({ to: { all: true }, event, data: { target } }),
    });

  it.each(SPELLINGS)('refuses %s without the key and delivers nothing', async (target) => {
    for (const authorization of [undefined, 'Bearer wrong', `Basic ${API_KEY}`]) {
      const answer = await publish(target, 'leak', authorization);
      expect([400, 401, 404]).toContain(answer.status);
      if (!keyed) {
        expect(answer.status).not.toBe(401); // the route does not exist at all
      }
    }
  });

  it('delivered none of those refused events', async () => {
    if (keyed) {
      // A call with the key, after all the refused ones: the listener sees it and nothing before.
      expect((await publish('/api/broadcast', 'control', `Bearer ${API_KEY}`)).status).toBe(202);
      await listener.nextOfType('control');
    } else {
      expect((await publish('/api/broadcast', 'control', `Bearer ${API_KEY}`)).status).toBe(404);
      await listener.request('ping', {}); // a round trip after every refused call
    }
    expect(listener.messages.filter((message) => message.type === 'leak')).toEqual([]);
  });

  it('answers every spelling with the key with 202 or a 4xx, never a 5xx', async () => {
    for (const target of SPELLINGS) {
      const answer = await publish(target, 'keyed', `Bearer ${API_KEY}`);
      expect(answer.status).toBeLessThan(500);
      if (!keyed) {
        expect(answer.status).toBe(404);
      }
    }
  });
});
