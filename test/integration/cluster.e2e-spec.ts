import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { Broker } from '../../libs/nest/src/core/broker/broker.interface';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { hsToken, seconds } from '../support/jwt';
import { REDIS_MODES, type RedisBackend, startBackend } from '../support/backends';
import { testPrefix } from '../support/redis';
import { connected, type TestClient, TestClient as Client, within } from '../support/ws-client';

/**
 * Two real instances sharing one real Redis behave as one (docs/protocol.md, handshake rows 6–8; docs/operations.md): on one
 * Redis server, and on a Redis Cluster of three masters with sharded pub/sub.
 */
describe.each(REDIS_MODES)('cluster mode: two instances, %s Redis', (mode) => {
  let backend: RedisBackend;
  let a: TestApp;
  let b: TestApp;
  let prefix: string;
  const clients: TestClient[] = [];
  let seq = 0;
  const user = (): string => `cu${++seq}`;

  async function connect(app: TestApp, userId: string): Promise<TestClient> {
    const client = await connected((await app.ticket(await app.devToken(userId))).url);
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    backend = await startBackend(mode);
    prefix = testPrefix();
    const env = {
      ...backend.env(prefix),
      BROADCAST_API_KEY: 'k'.repeat(40),
      MAX_CONNECTIONS_PER_USER: '1',
      CONNECT_ATTEMPTS_PER_MINUTE: '3',
      TICKETS_PER_MINUTE: '4',
    };
    [a, b] = await twoInstances(env);
  }, 60_000);
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await backend?.stop();
  }, 30_000);

  /** Waits for `sentinel` after `event`: by publish order, every copy of `event` has arrived. */
  async function countAfterSentinel(
    client: TestClient,
    event: string,
    sentinel: string,
  ): Promise<number> {
    await client.nextOfType(sentinel);
    return client.messages.filter((message) => message.type === event).length;
  }

  it('toUser, toUsers and toAll published on A reach sockets on A and B exactly once', async () => {
    const [u1, u2] = [user(), user()];
    const onA = await connect(a, u1);
    const onB = await connect(b, u2);
    const broadcast = a.app.get(BroadcastService);

    await broadcast.toUser(u2, 'invoice.paid', { id: 7 });
    expect(await onB.nextOfType('invoice.paid')).toEqual({
      type: 'invoice.paid',
      data: { id: 7 },
      ts: expect.any(Number),
      offset: 1, // the first publication in u2's stream
    });

    await broadcast.toUsers([u1, u2, u2], 'team.update', { n: 1 });
    await broadcast.toAll('maintenance', { at: '02:00' });
    await broadcast.toAll('sentinel', {});
    for (const client of [onA, onB]) {
      expect(await countAfterSentinel(client, 'team.update', 'sentinel')).toBe(1);
      expect(client.messages.filter((m) => m.type === 'maintenance')).toHaveLength(1);
    }
  });

  it('keeps publish order per publisher across instances', async () => {
    const u = user();
    const onB = await connect(b, u);
    const broadcast = a.app.get(BroadcastService);
    for (let i = 0; i < 50; i++) {
      void broadcast.toUser(u, 'tick', { i });
    }
    await broadcast.toUser(u, 'done', {});
    await onB.nextOfType('done');
    expect(
      onB.messages.filter((m) => m.type === 'tick').map((m) => (m.data as { i: number }).i),
    ).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('subscribes an instance only to the users it holds', async () => {
    const onlyOnA = user();
    await connect(a, onlyOnA);
    let heardOnB = 0;
    b.app.get<Broker>(Broker).onMessage(() => (heardOnB += 1));
    expect(await backend.subscribers(prefix, `u:${onlyOnA}`)).toBe(1);
    for (let i = 0; i < 20; i++) {
      await a.app.get(BroadcastService).toUser(onlyOnA, 'private', { i });
    }
    await b.app.get(BroadcastService).toAll('probe', {});
    await waitUntil(() => heardOnB > 0, 'B to hear its own toAll');
    // B heard only its own `toAll` (on the channel every instance shares), none of the 20.
    expect(heardOnB).toBe(1);
  });

  it('unsubscribes when the last local socket of a user leaves', async () => {
    const u = user();
    const client = await connect(b, u);
    expect(await backend.subscribers(prefix, `u:${u}`)).toBe(1);
    client.close();
    await waitUntil(async () => (await backend.subscribers(prefix, `u:${u}`)) === 0, 'unsubscribe');
  });

  it('replaces a user’s connection on A with 4009 when the user connects on B', async () => {
    const u = user();
    const first = await connect(a, u);
    const second = await connect(b, u);
    expect(await within(first.closed, '4009 on A')).toEqual({
      code: CloseCode.Replaced,
      reason: 'replaced by a newer connection',
    });
    expect(second.socket.readyState).toBe(second.socket.OPEN);
  });

  it('redeems a ticket issued by A once, on B', async () => {
    const { ticket } = await a.ticket(await a.devToken(user()));
    const url = `${b.ws}?ticket=${ticket}`;
    clients.push(await connected(url));
    const reused = new Client(url);
    clients.push(reused);
    expect((await within(reused.closed, 'reuse close')).code).toBe(CloseCode.Unauthorized);
    const onA = new Client(`${a.ws}?ticket=${ticket}`);
    clients.push(onA);
    expect((await within(onA.closed, 'reuse on A')).code).toBe(CloseCode.Unauthorized);
  });

  it('closes the session’s socket on B with 4003 within 1 s of logout on A', async () => {
    const token = await a.devToken(user());
    const onB = await connected((await b.ticket(token)).url);
    clients.push(onB);
    const started = Date.now();
    const response = await fetch(`${a.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(204);
    expect(await within(onB.closed, 'logout close on B', 1000)).toEqual({
      code: CloseCode.SessionRevoked,
      reason: 'session revoked',
    });
    expect(Date.now() - started).toBeLessThan(1000);
    const again = await fetch(`${b.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(again.status).toBe(401);
  });

  it('revokes a session whose token lives for a year (the longest accepted)', async () => {
    const token = await hsToken({ sub: user(), exp: seconds() + 365 * 86_400 });
    expect((await a.ticket(token)).ticket).toBeTruthy();
    const logout = await fetch(`${a.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(logout.status).toBe(204);
    const again = await fetch(`${b.http}/auth/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(again.status).toBe(401);
  });

  it('counts TICKETS_PER_MINUTE across instances', async () => {
    const token = await a.devToken(user());
    const statuses = [];
    for (const app of [a, b, a, b, a]) {
      statuses.push(
        (
          await fetch(`${app.http}/auth/ws-ticket`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}` },
          })
        ).status,
      );
    }
    expect(statuses).toEqual([201, 201, 201, 201, 429]);
  });

  it('counts CONNECT_ATTEMPTS_PER_MINUTE across instances', async () => {
    const u = user();
    const tokenA = await a.devToken(u);
    for (const app of [a, b, a]) {
      const client = await connected((await app.ticket(tokenA)).url);
      client.close();
      await within(client.closed, 'close');
    }
    const fourth = new Client((await b.ticket(tokenA)).url);
    clients.push(fourth);
    const closed = await within(fourth.closed, '4029');
    expect(closed.code).toBe(CloseCode.TooManyAttempts);
    expect(closed.reason).toMatch(/^retry after \d+ s$/);
  });

  it('POST /api/broadcast on B reaches a socket on A', async () => {
    const u = user();
    const onA = await connect(a, u);
    const post = (body: unknown, key = 'k'.repeat(40)) =>
      fetch(`${b.http}/api/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect(
      (await post({ to: { userId: u }, event: 'order.shipped', data: { order: 42 } })).status,
    ).toBe(202);
    expect((await onA.nextOfType('order.shipped')).data).toEqual({ order: 42 });
    expect((await post({ to: { all: true }, event: 'notice', data: 'hello' })).status).toBe(202);
    expect((await onA.nextOfType('notice')).data).toBe('hello');

    expect((await post({ to: { userId: u }, event: 'x', data: 1 }, 'wrong'.repeat(8))).status).toBe(
      401,
    );
    const bad = [
      { to: { userId: u, room: 'r' }, event: 'x', data: 1 },
      { to: {}, event: 'x', data: 1 },
      { to: { userId: u }, event: 'room.fake', data: 1 },
      { to: { userId: u }, event: 'welcome', data: 1 },
      { to: { userId: u }, event: 'x' },
      { to: { all: false }, event: 'x', data: 1 },
    ];
    for (const body of bad) {
      expect([JSON.stringify(body), (await post(body)).status]).toEqual([
        JSON.stringify(body),
        400,
      ]);
    }
  });
});

describe('POST /api/broadcast without BROADCAST_API_KEY', () => {
  it('does not exist', async () => {
    const app = await startApp();
    try {
      const response = await fetch(`${app.http}/api/broadcast`, {
        method: 'POST',
        headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
        body: JSON.stringify({ to: { all: true }, event: 'x', data: 1 }),
      });
      expect(response.status).toBe(404);
    } finally {
      await app.close();
    }
  });
});
