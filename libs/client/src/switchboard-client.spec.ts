import { SwitchboardClient } from './switchboard-client';
import type { WebSocketFactory } from './types';

/**
 * Reconnect timing, with fake timers. The ticket request fails at the network level, so no socket
 * is ever opened here; the close-code reactions are tested against a real server in
 * test/integration/client-sdk.e2e-spec.ts.
 */
describe('SwitchboardClient reconnect timing', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('retries a failing ticket request with exponential backoff and full jitter, capped at 30 s', async () => {
    const attempts: number[] = [];
    const start = Date.now();
    const client = new SwitchboardClient({
      url: 'http://127.0.0.1:9',
      getAccessToken: () => 'token',
      WebSocket: class {} as unknown as WebSocketFactory,
      fetch: () => {
        attempts.push(Date.now() - start);
        return Promise.reject(new Error('connection refused'));
      },
      backoff: { random: () => 0.999999 },
    });
    client.connect();
    for (let i = 0; i < 8; i++) {
      await jest.advanceTimersByTimeAsync(30_000);
    }
    client.close();
    const gaps = attempts.slice(1).map((at, i) => at - attempts[i]);
    expect(gaps.slice(0, 7)).toEqual([999, 1999, 3999, 7999, 15999, 29999, 29999]);
    expect(client.state).toBe('closed');
  });

  it('stops with the server’s reason when the ticket request is forbidden (403)', async () => {
    let asked = 0;
    const client = new SwitchboardClient({
      url: 'http://127.0.0.1:9',
      getAccessToken: () => 'token',
      WebSocket: class {} as unknown as WebSocketFactory,
      fetch: () => {
        asked += 1;
        return Promise.resolve(
          new Response(JSON.stringify({ statusCode: 403, message: 'origin not allowed' }), {
            status: 403,
          }),
        );
      },
    });
    const stopped: Array<{ state: string; message: string }> = [];
    client.on('stopped', (reason) => stopped.push(reason));
    client.connect();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(stopped).toEqual([{ state: 'closed', message: 'origin not allowed' }]);
    expect(asked).toBe(1);
    expect(client.state).toBe('closed');
  });
});
