import { CloseCode, type ErrorData } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { startApp, type TestApp } from '../support/app';
import { connected, type TestClient, within } from '../support/ws-client';

describe('flow control', () => {
  let app: TestApp;
  const clients: TestClient[] = [];
  let seq = 0;
  async function client(): Promise<TestClient> {
    const opened = await connected((await app.ticket(await app.devToken(`flow${++seq}`))).url);
    clients.push(opened);
    return opened;
  }

  beforeAll(async () => {
    app = await startApp({
      WS_MESSAGES_PER_WINDOW: '5',
      WS_MESSAGE_WINDOW_MS: '60000',
      WS_SEND_BUFFER_MAX_BYTES: '65536',
    });
  });
  afterEach(() => clients.splice(0).forEach((c) => c.close()));
  afterAll(() => app.close());

  it('drops messages past WS_MESSAGES_PER_WINDOW with rate_limited and retryAfterMs', async () => {
    const c = await client();
    for (let i = 0; i < 6; i++) {
      c.send({ type: 'ping', id: `p${i}` });
    }
    const limited = await c.nextOfType<ErrorData>('error');
    expect(limited.data?.code).toBe('rate_limited');
    const retryAfterMs = (limited.data?.details as { retryAfterMs: number }).retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(c.messages.filter((m) => m.type === 'pong').map((m) => m.id)).toEqual([
      'p0',
      'p1',
      'p2',
      'p3',
      'p4',
    ]);
    expect(c.socket.readyState).toBe(c.socket.OPEN);
  });

  it('closes with 1008 at twice the limit', async () => {
    const c = await client();
    for (let i = 0; i < 10; i++) {
      c.send({ type: 'ping' });
    }
    expect(await within(c.closed, 'flood close')).toEqual({
      code: CloseCode.PolicyViolation,
      reason: 'message rate exceeded',
    });
  });

  it('closes with 1008 at the tenth error in a window', async () => {
    const errorsApp = await startApp({ WS_MESSAGES_PER_WINDOW: '100' });
    try {
      const c = await connected((await errorsApp.ticket(await errorsApp.devToken('clumsy'))).url);
      clients.push(c);
      for (let i = 0; i < 9; i++) {
        c.send('not json');
      }
      c.send({ type: 'ping', id: 'still' });
      expect((await c.nextOfType('pong')).id).toBe('still');
      expect(c.messages.filter((m) => m.type === 'error')).toHaveLength(9);
      c.send('not json');
      expect(await within(c.closed, 'error close')).toEqual({
        code: CloseCode.PolicyViolation,
        reason: 'too many errors',
      });
    } finally {
      await errorsApp.close();
    }
  });

  it('closes a slow consumer with 4008 and keeps the server’s memory bounded', async () => {
    const slow = await client();
    const healthy = await client();
    // Stop reading: the kernel buffers fill, then ws buffers, then the server must give up.
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const broadcast = app.app.get(BroadcastService);
    const payload = 'x'.repeat(16 * 1024);
    expect(global.gc).toBeDefined(); // npm test runs jest with --expose-gc
    global.gc!();
    const before = process.memoryUsage();
    for (let i = 0; i < 8000; i++) {
      // 128 MB in all: without the ceiling most of it would sit in the server's send buffer.
      await broadcast.toUser(slow.welcome.user.id, 'bulk', { i, payload });
      if (i % 200 === 0) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    global.gc?.(); // what is kept, not the garbage of 8,000 frames awaiting a collection
    const after = process.memoryUsage();
    const grownMb = (after.heapUsed + after.external - before.heapUsed - before.external) / 2 ** 20;
    expect(grownMb).toBeLessThan(32);

    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await within(slow.closed, 'slow-consumer close', 10_000)).toEqual({
      code: CloseCode.SlowConsumer,
      reason: 'slow consumer',
    });
    healthy.send({ type: 'ping', id: 'fine' });
    expect((await healthy.nextOfType('pong')).id).toBe('fine');
  });
});
