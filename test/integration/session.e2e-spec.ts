import { CloseCode, type ErrorData } from '@switchboard/protocol';
import { SkewedClock, startApp, type TestApp } from '../support/app';
import { hsToken } from '../support/jwt';
import { connected, type TestClient, within } from '../support/ws-client';

/**
 * An app with `env` for the enclosing describe, a way to connect to it with a token, and its
 * clock: a test ages the app's sessions by moving the clock, where it would otherwise sleep
 * through whole-second `exp`s (the session scheduler ticks every 50 ms here).
 */
function useApp(env: Record<string, string>) {
  const booted: { app: TestApp } = { app: undefined as unknown as TestApp };
  const clients: TestClient[] = [];
  const clock = new SkewedClock();
  beforeAll(async () => {
    booted.app = await startApp(env, { clock, timings: { sessionTickMs: 50 } });
  });
  afterEach(() => clients.splice(0).forEach((c) => c.close()));
  afterAll(() => booted.app.close());
  return {
    booted,
    clock,
    /** The app's time in whole seconds, for `exp` claims. */
    appSeconds: () => Math.floor(clock.now() / 1000),
    async connect(token: string): Promise<TestClient> {
      const client = await connected((await booted.app.ticket(token)).url);
      clients.push(client);
      return client;
    },
  };
}

/** Session lifecycle with short-lived tokens (docs/protocol.md: session.* messages, close 4002). */
describe('session lifecycle', () => {
  const { booted, clock, appSeconds, connect } = useApp({ JWT_CLOCK_TOLERANCE_S: '0' });
  /** Long enough for the scheduler to have run a few ticks. */
  const ticks = () => new Promise((resolve) => setTimeout(resolve, 200));

  it('warns with session.expiring 60 s before the token expires, then closes with 4002 at expiry', async () => {
    const exp = appSeconds() + 62;
    const client = await connect(await hsToken({ sub: 'soon', exp }));
    clock.advance(3_000);
    const warning = await client.nextOfType<{ expiresAt: number }>('session.expiring', 1000);
    expect(warning.data).toEqual({ expiresAt: exp * 1000 });
    await ticks();
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    clock.advance(60_000);
    expect((await within(client.closed, '4002')).code).toBe(CloseCode.SessionExpired);
  });

  it('closes with 4002 when the token expires, by timer', async () => {
    const client = await connect(await hsToken({ sub: 'brief', exp: appSeconds() + 120 }));
    clock.advance(110_000); // 10 s left: warned, still open
    await client.nextOfType('session.expiring');
    await ticks();
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    clock.advance(11_000);
    expect((await within(client.closed, '4002')).code).toBe(CloseCode.SessionExpired);
  });

  it('extends the session with session.refresh and a fresh token of the same user', async () => {
    const exp = appSeconds() + 120;
    const client = await connect(await hsToken({ sub: 'renewer', sid: 'sid-1', exp }));
    const control = await connect(await hsToken({ sub: 'keeper-of-time', exp }));
    const freshExp = appSeconds() + 3600;
    client.send({
      type: 'session.refresh',
      id: 'r1',
      data: { token: await hsToken({ sub: 'renewer', sid: 'sid-1', exp: freshExp }) },
    });
    const refreshed = await client.nextOfType<{ expiresAt: number }>('session.refreshed');
    expect(refreshed).toMatchObject({ id: 'r1', data: { expiresAt: freshExp * 1000 } });
    clock.advance(121_000); // past the old exp: the control, not refreshed, is closed
    expect((await within(control.closed, '4002')).code).toBe(CloseCode.SessionExpired);
    await ticks();
    expect(client.socket.readyState).toBe(client.socket.OPEN);
  });

  it('follows a refreshed session id: logout of the new session closes the socket', async () => {
    const client = await connect(await hsToken({ sub: 'mover', sid: 'old-sid' }));
    const newToken = await hsToken({ sub: 'mover', sid: 'new-sid' });
    client.send({ type: 'session.refresh', data: { token: newToken } });
    await client.nextOfType('session.refreshed');
    const logout = await fetch(`${booted.app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${newToken}` },
    });
    expect(logout.status).toBe(204);
    expect((await within(client.closed, '4003')).code).toBe(CloseCode.SessionRevoked);
  });

  it.each([
    ['another user’s token', () => hsToken({ sub: 'someone-else' }), /another user/],
    ['an expired token', () => hsToken({ sub: 'keeper', exp: appSeconds() - 10 }), /expired/],
    ['a token with a bad signature', () => hsToken({ sub: 'keeper' }, 'z'.repeat(40)), /rejected/],
  ])('refuses %s with forbidden and keeps the session', async (_name, makeToken, message) => {
    const client = await connect(await hsToken({ sub: 'keeper' }));
    client.send({ type: 'session.refresh', id: 'bad', data: { token: await makeToken() } });
    const error = await client.nextOfType<ErrorData>('error');
    expect(error.id).toBe('bad');
    expect(error.data?.code).toBe('forbidden');
    expect(error.data?.message).toMatch(message);
    client.send({ type: 'ping', id: 'ok' });
    expect((await client.nextOfType('pong')).id).toBe('ok');
  });
});

/** `session.expiring` when less than a minute is left, and its timing with a clock tolerance. */
describe('session.expiring with JWT_CLOCK_TOLERANCE_S=30', () => {
  const { clock, appSeconds, connect } = useApp({ JWT_CLOCK_TOLERANCE_S: '30' });

  it('warns right after the welcome when less than a minute is left at connect', async () => {
    const exp = appSeconds() + 20;
    const client = await connect(await hsToken({ sub: 'late-comer', exp }));
    const warning = await client.nextOfType<{ expiresAt: number }>('session.expiring', 1000);
    expect(warning.data).toEqual({ expiresAt: exp * 1000 });
  });

  it('warns right after session.refreshed when the fresh token has less than a minute', async () => {
    const client = await connect(await hsToken({ sub: 'short-refresher', sid: 'short' }));
    const exp = appSeconds() + 30;
    client.send({
      type: 'session.refresh',
      id: 'r',
      data: { token: await hsToken({ sub: 'short-refresher', sid: 'short', exp }) },
    });
    await client.nextOfType('session.refreshed');
    const warning = await client.nextOfType<{ expiresAt: number }>('session.expiring', 1000);
    expect(warning.data).toEqual({ expiresAt: exp * 1000 });
    const types = client.messages.map((m) => m.type);
    expect(types).not.toContain('session.expiring');
  });

  it('warns a minute before exp, not a minute before exp + tolerance', async () => {
    const exp = appSeconds() + 62;
    const client = await connect(await hsToken({ sub: 'tolerant', exp }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.messages.map((m) => m.type)).not.toContain('session.expiring');
    // Due in 2 s; a warning planned against exp + 30 s would come 30 s later.
    clock.advance(3_000);
    const warning = await client.nextOfType<{ expiresAt: number }>('session.expiring', 1000);
    expect(warning.data).toEqual({ expiresAt: exp * 1000 });
  });
});
