import WebSocket from 'ws';
import { type ServerMessage, SwitchboardClient } from '@switchboard/client';
import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { suiteRedis, testPrefix } from '../support/redis';

/**
 * The SDK recovers its streams by itself: after a dropped socket and after the instance it was on
 * went away (cluster mode, two instances on one Redis), the application sees every publication
 * once, in order, and is told `recovered`.
 */
describe('client SDK recovery (cluster)', () => {
  let apps: TestApp[];
  let stopRedis: () => Promise<void>;
  let env: Record<string, string>;
  const clients: SwitchboardClient[] = [];

  beforeAll(async () => {
    let url: string;
    ({ url, stop: stopRedis } = await suiteRedis());
    env = {
      REDIS_URL: url,
      REDIS_PREFIX: testPrefix(),
      CONNECT_ATTEMPTS_PER_MINUTE: '1000',
      TICKETS_PER_MINUTE: '1000',
      // The drain's 1001 says when to come back (the SDK waits that long): keep it short here.
      RECONNECT_SPREAD_MS: '300',
    };
    apps = await twoInstances(env);
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close().catch(() => undefined)));
    await stopRedis();
  });

  /** A client that asks the first live app in `apps` for its tickets, and what it heard. */
  function client(userId: string) {
    let live = apps[0];
    let gate: Promise<void> = Promise.resolve();
    let openGate = (): void => undefined;
    let closes = 0;
    const heard: ServerMessage[] = [];
    const recoveries: Array<{ room?: string; missed: number }> = [];
    const resets: Array<{ room?: string }> = [];
    const sdk = new SwitchboardClient({
      url: 'http://switchboard.invalid',
      WebSocket,
      getAccessToken: () => live.devToken(userId),
      // Tickets wait while the gate is shut: the test decides when the client may come back.
      fetch: async (input, init) => {
        await gate;
        return fetch((input as string).replace('http://switchboard.invalid', live.http), init);
      },
      backoff: { initialMs: 50, maxMs: 200 },
    });
    sdk.on('message', (message) => message.offset !== undefined && heard.push(message));
    sdk.on('recovered', (recovery) => recoveries.push(recovery));
    sdk.on('reset', (reset) => resets.push(reset));
    sdk.on('close', () => (closes += 1));
    clients.push(sdk);
    return {
      sdk,
      heard,
      recoveries,
      resets,
      closes: () => closes,
      moveTo: (app: TestApp) => (live = app),
      shut: (): void => {
        gate = new Promise((resolve) => (openGate = resolve));
      },
      open: () => openGate(),
    };
  }
  const texts = (messages: ServerMessage[]) =>
    messages.map((m) => `${m.type}:${m.room ?? 'me'}:${m.offset}`);

  it('recovers the user stream and its rooms after a dropped socket', async () => {
    const c = client('drop-1');
    c.sdk.connect();
    await waitUntil(() => c.sdk.state === 'open', 'open');
    await c.sdk.join('drop-room');
    const broadcast = apps[1].app.get(BroadcastService);
    await broadcast.toRoom('drop-room', 'note', { n: 1 });
    await waitUntil(() => c.heard.length === 1, 'the first note');

    // The server drops the socket (1001: the SDK reconnects); three publications meanwhile.
    c.shut();
    await broadcast.disconnectUser('drop-1', CloseCode.GoingAway, 'restart');
    await waitUntil(() => c.closes() === 1, 'the drop');
    await broadcast.toRoom('drop-room', 'note', { n: 2 });
    await broadcast.toUser('drop-1', 'invoice', { n: 1 });
    await broadcast.toRoom('drop-room', 'note', { n: 3 });
    c.open();
    await waitUntil(() => c.heard.length === 4, 'all four, recovered');
    expect(texts(c.heard)).toEqual([
      'note:drop-room:1',
      'invoice:me:1',
      'note:drop-room:2',
      'note:drop-room:3',
    ]);
    expect(c.recoveries).toEqual(
      expect.arrayContaining([
        { room: undefined, missed: 1 },
        { room: 'drop-room', missed: 2 },
      ]),
    );
    expect(c.resets).toEqual([]);
  });

  it('recovers on the other instance after the one it was on shut down', async () => {
    const c = client('move-1');
    c.sdk.connect();
    await waitUntil(() => c.sdk.state === 'open', 'open');
    await c.sdk.join('move-room');
    const [a, b] = apps;
    c.moveTo(b);
    c.shut();
    await a.close(); // drains: the socket closes with 1001 and the SDK comes back, to B
    const broadcast = b.app.get(BroadcastService);
    await broadcast.toRoom('move-room', 'note', { n: 1 });
    await broadcast.toUser('move-1', 'invoice', { n: 1 });
    c.open();
    await waitUntil(() => c.heard.length === 2 && c.sdk.state === 'open', 'both, on B');
    expect(texts(c.heard).sort()).toEqual(['invoice:me:1', 'note:move-room:1']);
    await broadcast.toRoom('move-room', 'note', { n: 2 });
    await waitUntil(() => c.heard.length === 3, 'the live one');
    expect(c.heard[2]).toMatchObject({ room: 'move-room', offset: 2 });
    expect(c.recoveries).toEqual(
      expect.arrayContaining([
        { room: undefined, missed: 1 },
        { room: 'move-room', missed: 1 },
      ]),
    );
    expect(c.resets).toEqual([]);
    apps = [b, await startApp(env)];
  });
});
