import { unitKit } from '../../../../../test/support/unit-kit';
import { SessionLifecycle } from './session-lifecycle';

describe('SessionLifecycle', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  function setup() {
    const kit = unitKit({ JWT_CLOCK_TOLERANCE_S: '30' });
    const sessions = new SessionLifecycle(kit.auth, kit.hub, kit.clock, kit.config);
    return { kit, sessions, stop: () => (sessions.onApplicationShutdown(), kit.dispose()) };
  }
  const expiring = (socket: { frames(): Array<{ type: string }> }) =>
    socket.frames().filter((frame) => frame.type === 'session.expiring');

  it('warns a minute before exp, then closes with 4002 at exp plus the tolerance', () => {
    const { kit, sessions, stop } = setup();
    const { connection, socket } = kit.connect('ann', { expiresAt: Date.now() + 120_000 });
    sessions.schedule(connection);
    jest.advanceTimersByTime(59_000);
    expect(expiring(socket)).toHaveLength(0);
    jest.advanceTimersByTime(1_500);
    expect(expiring(socket)).toEqual([
      expect.objectContaining({ data: { expiresAt: connection.session.expiresAt } }),
    ]);
    jest.advanceTimersByTime(60_000); // at exp: still within the 30 s tolerance
    expect(socket.closed).toBeNull();
    jest.advanceTimersByTime(30_500);
    expect(socket.closed).toEqual({ code: 4002, reason: 'session expired' });
    expect(expiring(socket)).toHaveLength(1);
    stop();
  });

  it('warns on the next tick when less than a minute is left', () => {
    const { kit, sessions, stop } = setup();
    const { connection, socket } = kit.connect('ben', { expiresAt: Date.now() + 20_000 });
    sessions.schedule(connection);
    jest.advanceTimersByTime(kit.config.timings.sessionTickMs);
    expect(expiring(socket)).toHaveLength(1);
    stop();
  });

  it('forgets an unscheduled socket', () => {
    const { kit, sessions, stop } = setup();
    const { connection, socket } = kit.connect('cat', { expiresAt: Date.now() + 1_000 });
    sessions.schedule(connection);
    sessions.unschedule(connection);
    jest.advanceTimersByTime(120_000);
    expect(socket.sent).toEqual([]);
    expect(socket.closed).toBeNull();
    stop();
  });
});
