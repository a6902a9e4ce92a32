import WebSocket from 'ws';
import { SwitchboardClient } from '@switchboard/client';
import { TokenVerifier } from '../../libs/nest/src/auth/token-verifier.service';
import { AdmissionGate, type AdmissionPass } from '../../libs/nest/src/core/admission-gate';
import { startApp, TEST_ORIGIN, type TestApp, waitUntil } from '../support/app';
import { RedisServer, testPrefix } from '../support/redis';
import { connected, TestClient, within } from '../support/ws-client';

const CAPACITY = 4;

/**
 * The admission gate in front of the ticket route and the upgrade (docs/operations.md, A reconnect
 * storm): past its handshakes in progress a request is refused at once with a time to come back,
 * before any JWT verification, and a refused upgrade keeps its ticket.
 */
describe('admission', () => {
  let app: TestApp;
  let gate: AdmissionGate;
  const held: AdmissionPass[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    app = await startApp(
      { CONNECT_ATTEMPTS_PER_MINUTE: '100', TICKETS_PER_MINUTE: '100' },
      { limits: { maxHandshakesInProgress: CAPACITY } },
    );
    gate = app.app.get(AdmissionGate);
  });
  afterEach(() => {
    held.splice(0).forEach((pass) => pass.release());
    clients.splice(0).forEach((client) => client.close());
  });
  afterAll(() => app.close());

  /** Takes every place, as handshakes in progress would. */
  function fill(): void {
    while (gate.handshakesInProgress < CAPACITY) {
      const pass = gate.enter();
      if (pass.refused !== undefined) {
        throw new Error('the gate refused before it was full');
      }
      held.push(pass);
    }
  }
  const ticketRequest = (token: string) =>
    fetch(`${app.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
  const refusedTotal = async () => {
    const text = await (await fetch(`${app.http}/metrics`)).text();
    return Number(/^ws_admission_refused_total\{reason="capacity"\} (\d+)/m.exec(text)?.[1]);
  };

  it('refuses ticket requests past capacity at once, spread, with no JWT verified', async () => {
    const token = await app.devToken('stormy');
    const verify = jest.spyOn(app.app.get(TokenVerifier), 'verify');
    const before = await refusedTotal();
    fill();
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 30 }, () => ticketRequest(token)));
    const elapsed = Date.now() - started;
    const bodies = (await Promise.all(answers.map((answer) => answer.json()))) as Array<{
      retryAfterMs: number;
      message: string;
    }>;
    expect(answers.map((answer) => answer.status)).toEqual(Array(30).fill(503));
    expect(elapsed).toBeLessThan(2000);
    for (const [i, answer] of answers.entries()) {
      expect(Number(answer.headers.get('retry-after'))).toBe(
        Math.max(1, Math.ceil(bodies[i].retryAfterMs / 1000)),
      );
    }
    const waits = bodies.map((body) => body.retryAfterMs);
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(250);
    expect(new Set(waits).size).toBeGreaterThan(20); // jittered: they come back spread out
    expect(bodies[0].message).toMatch(/busy/);
    expect(verify).not.toHaveBeenCalled();
    verify.mockRestore();
    expect(await refusedTotal()).toBe(before + 30);
    const metrics = await (await fetch(`${app.http}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^ws_handshakes_in_progress ${CAPACITY}$`, 'm'));

    held.splice(0).forEach((pass) => pass.release());
    expect((await ticketRequest(token)).status).toBe(201);
  });

  it('the SDK waits the retryAfterMs it was given, then connects', async () => {
    const token = await app.devToken('sdk');
    fill();
    const reconnecting: Array<{ attempt: number; delayMs: number; reason: string }> = [];
    const client = new SwitchboardClient({ url: app.http, WebSocket, getAccessToken: () => token });
    client.on('reconnecting', (event) => reconnecting.push(event));
    try {
      client.connect();
      await waitUntil(() => reconnecting.length > 0, 'the first refusal');
      expect(reconnecting[0].reason).toMatch(/503/);
      expect(reconnecting[0].delayMs).toBeGreaterThanOrEqual(250);
      held.splice(0).forEach((pass) => pass.release());
      await waitUntil(
        () => client.state === 'open',
        'the connection once the gate has room',
        35_000,
      );
    } finally {
      client.close();
    }
  }, 40_000);

  it('refuses an upgrade past capacity with 503, and the same ticket is welcomed once after', async () => {
    const { ticket } = await app.ticket(await app.devToken('patient'));
    const url = `${app.ws}?ticket=${ticket}`;
    fill();
    const refused = new TestClient(url, { origin: TEST_ORIGIN });
    clients.push(refused);
    const answer = await within(refused.refused, 'the 503');
    expect(answer.status).toBe(503);
    expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((JSON.parse(answer.body) as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);

    held.splice(0).forEach((pass) => pass.release());
    const welcomed = await connected(url, { origin: TEST_ORIGIN });
    clients.push(welcomed);
    expect(welcomed.welcome.user.id).toBe('patient');
    // Single use all the same: a third try is refused with 4001.
    const again = new TestClient(url, { origin: TEST_ORIGIN });
    clients.push(again);
    expect((await within(again.closed, 'the 4001')).code).toBe(4001);
    expect(gate.handshakesInProgress).toBe(0); // every place was given back
  });
});

/** Shedding by age: a ticket request admitted too long before its work starts is refused. */
describe('admission: shedding by age', () => {
  let redis: RedisServer;
  let app: TestApp;

  beforeAll(async () => {
    redis = await RedisServer.start();
    app = await startApp({
      REDIS_URL: redis.url,
      REDIS_PREFIX: testPrefix(),
      ADMISSION_MAX_WAIT_MS: '300',
    });
  });
  afterAll(async () => {
    redis.thaw();
    await app?.close();
    await redis?.stop();
  });

  const metric = async (pattern: RegExp) =>
    Number(pattern.exec(await (await fetch(`${app.http}/metrics`)).text())?.[1] ?? NaN);
  const issued = () => metric(/^ws_tickets_issued_total (\d+)/m);
  const byAge = () => metric(/^ws_admission_refused_total\{reason="age"\} (\d+)/m);

  it('answers 503 with a time to come back, and issues no ticket', async () => {
    const token = await app.devToken('slowpoke');
    const [issuedBefore, ageBefore] = [await issued(), await byAge()];
    // Redis answers the request's checks 800 ms late: past ADMISSION_MAX_WAIT_MS, the ticket's
    // own Redis write must not happen.
    redis.freeze();
    const answer = fetch(`${app.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    redis.thaw();
    const response = await answer;
    expect(response.status).toBe(503);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await response.json()).toMatchObject({ retryAfterMs: expect.any(Number) as number });
    expect(await byAge()).toBe(ageBefore + 1);
    expect(await issued()).toBe(issuedBefore);
    // On time, the same token gets its ticket.
    expect(
      (
        await fetch(`${app.http}/auth/ws-ticket`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        })
      ).status,
    ).toBe(201);
  });
});
