import { CloseCode } from '@switchboard/protocol';
import { AuthService } from '../../libs/nest/src/auth/auth.service';
import { RevocationStore } from '../../libs/nest/src/auth/revocation-store.interface';
import { Hub } from '../../libs/nest/src/core/hub';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { connected, type TestClient, within } from '../support/ws-client';

describe('gateway: accepted sockets', () => {
  let app: TestApp;
  const clients: TestClient[] = [];
  let seq = 0;
  async function client(options?: { autoPong?: boolean; ttl?: number }): Promise<TestClient> {
    const token = await app.devToken(`g${++seq}`, { ttl: options?.ttl });
    const opened = await connected((await app.ticket(token)).url, {
      autoPong: options?.autoPong ?? true,
    });
    clients.push(opened);
    return opened;
  }

  beforeAll(async () => {
    app = await startApp({ WS_HEARTBEAT_MS: '150', JWT_CLOCK_TOLERANCE_S: '0' });
  });
  afterEach(() => clients.splice(0).forEach((c) => c.close()));
  afterAll(() => app.close());

  it('answers the application ping with pong, echoing the id', async () => {
    const c = await client();
    c.send({ type: 'ping', id: 'p-1' });
    expect(await c.nextOfType('pong')).toEqual({ type: 'pong', id: 'p-1', ts: expect.any(Number) });
  });

  it('answers an unknown type with an error frame and keeps the socket open', async () => {
    const c = await client();
    c.send({ type: 'launch.rockets', id: 'x' });
    expect(await c.nextOfType('error')).toEqual({
      type: 'error',
      id: 'x',
      ts: expect.any(Number),
      data: { code: 'unknown_type', message: 'unknown message type "launch.rockets"' },
    });
    c.send({ type: 'ping' });
    await c.nextOfType('pong');
  });

  it('answers bad JSON with bad_json', async () => {
    const c = await client();
    c.send('{not json');
    expect((await c.nextOfType<{ code: string }>('error')).data?.code).toBe('bad_json');
  });

  it('keeps a client that answers pings alive across several heartbeats', async () => {
    const c = await client();
    await new Promise((resolve) => setTimeout(resolve, 500)); // three heartbeats
    expect(c.socket.readyState).toBe(c.socket.OPEN);
  });

  it('terminates a client that stops answering pings', async () => {
    const c = await client({ autoPong: false });
    const started = Date.now();
    const closed = await within(c.closed, 'heartbeat termination', 3000);
    expect(closed.code).toBe(CloseCode.Abnormal);
    expect(Date.now() - started).toBeLessThan(1500);
    await waitUntil(() => app.app.get(Hub).size === 0, 'hub to forget the socket', 2000);
  });

  it('closes a socket with 4002 when its token expires', async () => {
    const c = await client({ ttl: 1 });
    expect((await within(c.closed, 'expiry close', 3000)).code).toBe(CloseCode.SessionExpired);
  });

  it('closes every socket of a session with 4003 within 1 s of logout', async () => {
    const token = await app.devToken('leaver');
    const sockets = [await connected((await app.ticket(token)).url)];
    clients.push(...sockets);
    const started = Date.now();
    const response = await fetch(`${app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(204);
    const closed = await within(sockets[0].closed, 'logout close', 1000);
    expect(closed).toEqual({ code: CloseCode.SessionRevoked, reason: 'session revoked' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('revalidates sessions every SESSION_REVALIDATE_MS: a revocation that sent no event still closes with 4003', async () => {
    const revalidating = await startApp({ SESSION_REVALIDATE_MS: '200' });
    try {
      const token = await revalidating.devToken('quiet-revoke');
      const socket = await connected((await revalidating.ticket(token)).url);
      clients.push(socket);
      const session = await revalidating.app.get(AuthService).verify(token);
      // Straight into the store: no disconnect is broadcast, only the periodic check can notice.
      await revalidating.app
        .get<RevocationStore>(RevocationStore)
        .revoke(session.sessionId, 60_000);
      expect((await within(socket.closed, 'revalidation close', 2000)).code).toBe(
        CloseCode.SessionRevoked,
      );
    } finally {
      await revalidating.close();
    }
  });

  it('closes with 1003 on a binary frame', async () => {
    const c = await client();
    c.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await within(c.closed, 'close')).code).toBe(CloseCode.UnsupportedData);
  });

  it('closes with 1009 on a message over WS_MAX_PAYLOAD_BYTES', async () => {
    const c = await client();
    c.send(JSON.stringify({ type: 'ping', id: 'x' }).padEnd(10_241, ' '));
    expect((await within(c.closed, 'close')).code).toBe(CloseCode.MessageTooBig);
  });
});
