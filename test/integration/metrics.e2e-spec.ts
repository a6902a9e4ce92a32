import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { hsToken, seconds } from '../support/jwt';
import { delta, parseMetrics, scrape } from '../support/prometheus';
import { connected, TestClient, within } from '../support/ws-client';

const TOKEN = 'metrics-token-0123456789';

/** Drive real traffic, scrape /metrics, and check every counter moved by exactly what was done. */
describe('Prometheus metrics (docs/operations.md, Metrics)', () => {
  let app: TestApp;
  const scrapeNow = () => scrape(app.http, TOKEN);
  beforeAll(async () => {
    app = await startApp({
      METRICS_TOKEN: TOKEN,
      CONNECT_ATTEMPTS_PER_MINUTE: '2',
      JWT_CLOCK_TOLERANCE_S: '0',
      CONNECTION_SPIKE_PER_10S: '1000',
    });
  });
  afterAll(() => app.close());

  it('requires METRICS_TOKEN when set', async () => {
    expect((await fetch(`${app.http}/metrics`)).status).toBe(401);
    expect(
      (
        await fetch(`${app.http}/metrics`, {
          headers: { authorization: 'Bearer wrong-token-0123456789' },
        })
      ).status,
    ).toBe(401);
    const ok = await fetch(`${app.http}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('exposes the default process metrics and no redis_up in embedded mode', async () => {
    const samples = await scrapeNow();
    expect(samples.has('process_cpu_user_seconds_total')).toBe(true);
    expect(samples.has('nodejs_heap_size_used_bytes')).toBe(true);
    expect(samples.get('ws_connection_spike')).toBe(0);
    expect([...samples.keys()].some((key) => key.startsWith('redis_up'))).toBe(false);
  });

  it('counts handshakes, messages, errors, broadcasts, tickets and closes exactly', async () => {
    const before = await scrapeNow();

    // Two accepted sockets (two tickets issued and redeemed).
    const alice = await connected((await app.ticket(await app.devToken('m-alice'))).url);
    const bob = await connected((await app.ticket(await app.devToken('m-bob'))).url);
    // Refusals: an unknown ticket, a foreign origin, an expired Bearer token, a revoked session, connect attempts.
    const refused: Array<Promise<unknown>> = [];
    const unknownTicket = new TestClient(`${app.ws}?ticket=${'A'.repeat(43)}`);
    refused.push(unknownTicket.closed);
    const foreign = new TestClient((await app.ticket(await app.devToken('m-foreign'))).url, {
      origin: 'https://evil.test',
    });
    refused.push(foreign.refused);
    const expired = new TestClient(app.ws, {
      headers: { authorization: `Bearer ${await hsToken({ sub: 'm-old', exp: seconds() - 60 })}` },
    });
    refused.push(expired.closed);
    await Promise.all(refused.map((p) => within(p, 'refusal')));
    const carolToken = await app.devToken('m-carol');
    const carolTicket = await app.ticket(carolToken);
    await fetch(`${app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carolToken}` },
    });
    const revoked = new TestClient(carolTicket.url);
    await within(revoked.closed, 'revoked');
    const daveToken = await app.devToken('m-dave');
    for (let i = 0; i < 2; i++) {
      const dave = await connected((await app.ticket(daveToken)).url);
      dave.socket.close(1000);
      await within(dave.closed, 'dave close');
    }
    const limited = new TestClient((await app.ticket(daveToken)).url);
    expect((await within(limited.closed, '4029')).code).toBe(CloseCode.TooManyAttempts);

    // Messages: 3 pings, one bad JSON, one unknown type.
    for (let i = 0; i < 3; i++) {
      alice.send({ type: 'ping', id: `p${i}` });
      await alice.nextOfType('pong');
    }
    alice.send('nope');
    alice.send({ type: 'nope' });
    await alice.nextOfType('error');
    await alice.nextOfType('error');
    // Broadcasts: one to a user, one to everyone.
    const broadcast = app.app.get(BroadcastService);
    await broadcast.toUser('m-bob', 'hello', {});
    await broadcast.toAll('all-hands', {});
    await bob.nextOfType('hello');
    await bob.nextOfType('all-hands');
    await alice.nextOfType('all-hands');
    alice.socket.close(1000);
    bob.socket.close(1000);
    await Promise.all([within(alice.closed, 'alice close'), within(bob.closed, 'bob close')]);
    await waitUntil(
      async () =>
        (await scrapeNow()).get('ws_connections_active{kind="user",transport="websocket"}') === 0,
      'no active sockets',
    );

    const after = await scrapeNow();
    const d = (key: string) => delta(before, after, key);
    expect({
      accepted: d('ws_connections_total{outcome="accepted",transport="websocket"}'),
      unauthorized: d('ws_connections_total{outcome="unauthorized",transport="websocket"}'),
      forbiddenOrigin: d('ws_connections_total{outcome="forbidden_origin",transport="websocket"}'),
      expired: d('ws_connections_total{outcome="expired",transport="websocket"}'),
      revoked: d('ws_connections_total{outcome="revoked",transport="websocket"}'),
      rateLimited: d('ws_connections_total{outcome="rate_limited",transport="websocket"}'),
      pings: d('ws_messages_received_total{type="ping"}'),
      other: d('ws_messages_received_total{type="other"}'),
      badJson: d('ws_message_errors_total{code="bad_json"}'),
      unknownType: d('ws_message_errors_total{code="unknown_type"}'),
      toUser: d('ws_broadcasts_total{target="user"}'),
      toAll: d('ws_broadcasts_total{target="all"}'),
      issued: d('ws_tickets_issued_total'),
      redeemedOk: d('ws_tickets_redeemed_total{result="ok"}'),
      redeemedInvalid: d('ws_tickets_redeemed_total{result="invalid"}'),
      closed1000: d('ws_disconnections_total{code="1000",transport="websocket"}'),
      durations: d('ws_connection_duration_seconds_count'),
      // welcome ×4, pong ×3, error ×2, hello ×1, all-hands ×2, and the closes are not frames we count
      sent: d('ws_messages_sent_total'),
      deliveries: d('ws_delivery_lag_seconds_count{path="local"}'),
    }).toEqual({
      accepted: 4,
      unauthorized: 1,
      forbiddenOrigin: 1,
      expired: 1,
      revoked: 1,
      rateLimited: 1,
      pings: 3,
      other: 2,
      badJson: 1,
      unknownType: 1,
      toUser: 1,
      toAll: 1,
      issued: 7,
      redeemedOk: 6,
      redeemedInvalid: 1,
      closed1000: 4,
      durations: 4,
      sent: 12,
      deliveries: 2,
    });
  });

  it('raises ws_connection_spike with one warning past CONNECTION_SPIKE_PER_10S', async () => {
    const spiky = await startApp({ CONNECTION_SPIKE_PER_10S: '3', METRICS_TOKEN: TOKEN });
    try {
      for (let i = 0; i < 5; i++) {
        const client = new TestClient(`${spiky.ws}?ticket=x${i}`);
        await within(client.closed, 'close');
      }
      const samples = await scrape(spiky.http, TOKEN);
      expect(samples.get('ws_connection_spike')).toBe(1);
      expect(
        samples.get('ws_connections_total{outcome="unauthorized",transport="websocket"}'),
      ).toBe(5);
      const warnings = spiky.logs
        .parsed()
        .filter((line) => String(line.msg).startsWith('connection spike'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 'warn', attempts: 4, threshold: 3 });
    } finally {
      await spiky.close();
    }
  });

  it('parses what it scrapes', () => {
    expect(parseMetrics('# HELP x y\nx{b="2",a="1"} 3\ny 4\n')).toEqual(
      new Map([
        ['x{a="1",b="2"}', 3],
        ['y', 4],
      ]),
    );
  });
});
