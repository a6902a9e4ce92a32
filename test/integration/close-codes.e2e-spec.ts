import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { Hub } from '../../libs/nest/src/core/hub';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { scrape } from '../support/prometheus';
import { RawWebSocket } from '../support/raw-ws';
import { connected, type TestClient } from '../support/ws-client';

/**
 * Metrics and logs record the close code the server sent, not the 1006 that a client which never
 * answers the close leaves behind; codes outside the protocol's list count as `other` (docs/operations.md, Cluster mode).
 */
describe('recorded close codes', () => {
  let app: TestApp;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    app = await startApp({
      // The heartbeat ends sockets that never answer the close; ws alone would wait 30 s.
      WS_HEARTBEAT_MS: '200',
      WS_SEND_BUFFER_MAX_BYTES: '65536',
    });
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => app.close());

  async function connect(userId: string): Promise<TestClient> {
    const client = await connected((await app.ticket(await app.devToken(userId))).url);
    clients.push(client);
    return client;
  }
  const closes = async (code: string): Promise<number> =>
    (await scrape(app.http)).get(`ws_disconnections_total{code="${code}",transport="websocket"}`) ??
    0;
  const loggedClose = (connectionId: string): unknown =>
    app.logs
      .parsed()
      .find((line) => line.msg === 'connection closed' && line.connectionId === connectionId)?.code;

  it('a slow consumer that never reads is recorded as 4008', async () => {
    const before = await closes('4008');
    const slow = await connect('never-reads');
    const socket = slow.socket as unknown as { _socket: { pause(): void } };
    socket._socket.pause();
    const broadcast = app.app.get(BroadcastService);
    const held = app.app.get(Hub).get(slow.welcome.connectionId);
    const payload = 'x'.repeat(16 * 1024);
    // No yielding in between, so the heartbeat cannot end the socket first.
    for (let i = 0; i < 4000 && held?.closeCodeSent === null; i++) {
      await broadcast.toUser('never-reads', 'bulk', { i, payload });
    }
    await waitUntil(() => loggedClose(slow.welcome.connectionId) !== undefined, 'the close log');
    expect(loggedClose(slow.welcome.connectionId)).toBe(CloseCode.SlowConsumer);
    expect(await closes('4008')).toBe(before + 1);
  });

  it('a protocol violation by a client that never answers the close is recorded as 1002', async () => {
    const before = await closes('1002');
    const { ticket } = await app.ticket(await app.devToken('raw-violator'));
    const raw = await RawWebSocket.open(app.port, `/ws?ticket=${ticket}`);
    try {
      raw.socket.pause(); // never reads the close frame, never answers it
      raw.write([0x81, 0x02, 0x68, 0x69]); // unmasked
      await waitUntil(async () => (await closes('1002')) === before + 1, '1002 counted');
      const line = app.logs
        .parsed()
        .find((entry) => entry.msg === 'connection closed' && entry.userId === 'raw-violator');
      expect(line?.code).toBe(CloseCode.ProtocolError);
    } finally {
      raw.destroy();
    }
  });

  it('codes outside the protocol are counted as other', async () => {
    const before = await closes('other');
    const client = await connect('odd-closer');
    client.socket.close(4321, 'mine');
    await waitUntil(async () => (await closes('other')) === before + 1, 'other counted');
    expect(await closes('4321')).toBe(0);
    expect(loggedClose(client.welcome.connectionId)).toBe(4321);
  });
});
