import WebSocket from 'ws';
import { SwitchboardClient } from './switchboard-client';

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
      WebSocket,
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
      WebSocket,
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

  it('fails a request waiting for the connection as soon as the next attempt would come too late', async () => {
    const client = new SwitchboardClient({
      url: 'http://127.0.0.1:9',
      getAccessToken: () => 'token',
      WebSocket,
      fetch: () =>
        Promise.resolve(new Response('busy', { status: 503, headers: { 'retry-after': '30' } })),
    });
    client.connect();
    const asked = Date.now();
    const joined = client.join('lobby');
    const failed = expect(joined).rejects.toThrow(
      /^ticket request refused \(503, retry after 30 s\)$/,
    );
    await jest.advanceTimersByTimeAsync(0);
    await failed;
    expect(Date.now() - asked).toBe(0);
    expect(client.state).toBe('reconnecting');
    client.close();
  });

  it('keeps a request waiting while a retry can still make it, then says why it gave up', async () => {
    const client = new SwitchboardClient({
      url: 'http://127.0.0.1:9',
      getAccessToken: () => 'token',
      WebSocket,
      fetch: () => Promise.reject(new Error('connection refused')),
      backoff: { random: () => 0.999999 },
    });
    client.connect();
    const asked = Date.now();
    let failedAt = 0;
    const joined = client.join('lobby').finally(() => (failedAt = Date.now() - asked));
    const failed = expect(joined).rejects.toThrow(/^ticket request failed: connection refused$/);
    await jest.advanceTimersByTimeAsync(10_000);
    await failed;
    // Attempts at 0, 1, 3 and 7 s; the next one (15 s) would come after the 10 s deadline.
    expect(failedAt).toBe(999 + 1999 + 3999);
    client.close();
  });

  it('fails a waiting request with the reason the client stopped', async () => {
    const client = new SwitchboardClient({
      url: 'http://127.0.0.1:9',
      getAccessToken: () => 'token',
      WebSocket,
      fetch: () => Promise.resolve(new Response('{}', { status: 401 })),
    });
    client.connect();
    const joined = client.join('lobby');
    const failed = expect(joined).rejects.toThrow(
      'not connected (state: signed-out): the access token was refused',
    );
    await jest.advanceTimersByTimeAsync(0);
    await failed;
  });
});
