import { request } from 'node:http';
import { connect, type Server, type Socket } from 'node:net';
import { CloseCode, type DevTokenResponse, type TicketResponse } from '@switchboard/protocol';
import { holdNextRedemption, startApp, type TestApp, waitUntil } from '../support/app';
import { heldSockets } from '../support/descriptors';
import { scrape } from '../support/prometheus';
import { RawWebSocket } from '../support/raw-ws';
import { connected, type TestClient, within } from '../support/ws-client';

/**
 * Hostile TCP clients: each sends a few bytes (or none) and then, by default, neither reads, nor
 * answers, nor closes its side. With `watch`, one reads and closes when the server does, so that
 * the server's closes can be counted from here.
 */
class Hostiles {
  private readonly sockets: Socket[] = [];
  /** Those closed (by the server, for a watching one) so far. */
  closed = 0;

  open(
    port: number,
    count: number,
    bytes: string,
    { from = '127.0.0.1', watch = false }: { from?: string; watch?: boolean } = {},
  ): Promise<Socket[]> {
    return Promise.all(Array.from({ length: count }, () => this.one(port, bytes, from, watch)));
  }

  private async one(port: number, bytes: string, from: string, watch: boolean): Promise<Socket> {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from, allowHalfOpen: !watch });
    this.sockets.push(socket);
    // A reset by the server is one of the outcomes these tests wait for, seen through the close.
    socket.on('error', () => undefined);
    if (watch) {
      socket.resume();
    } else {
      socket.pause();
    }
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    void closed.then(() => (this.closed += 1));
    const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    await within(Promise.race([connected, closed]), 'a TCP connection');
    if (bytes !== '' && !socket.destroyed) {
      socket.write(bytes);
    }
    return socket;
  }

  destroy(): void {
    this.sockets.splice(0).forEach((socket) => socket.destroy());
    this.closed = 0;
  }
}

/** How many of these clients' connections the server on `port` still holds a descriptor for. */
function held(port: number, clients: Array<Socket | RawWebSocket>): number {
  const ports = new Set(
    clients.map((client) => (client instanceof RawWebSocket ? client.socket : client).localPort),
  );
  return heldSockets(port).filter(({ remotePort }) => ports.has(remotePort)).length;
}

/** A request that will never be complete: a body shorter than its Content-Length. */
const withoutBody = (path: string, headers = '', partialBody = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
  `Content-Length: 100\r\n${headers}\r\n${partialBody}`;
/** Upgrade headers without the blank line that ends them. */
const HALF_SENT_UPGRADE =
  'GET /ws?ticket=x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
const upgrade = (pathAndQuery: string, headers = ''): string =>
  `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
  `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
  `Sec-WebSocket-Version: 13\r\n${headers}\r\n`;

const TIMED_OUT = 'ws_connections_total{outcome="timeout",transport="websocket"}';
const ACCEPTED = 'ws_connections_total{outcome="accepted",transport="websocket"}';

/** docs/operations.md, Slow clients: HANDSHAKE_TIMEOUT_MS bounds whatever has not arrived. */
describe('Slow clients hold nothing: HANDSHAKE_TIMEOUT_MS', () => {
  // Short, yet long enough that 300 connections are all open before the first is dropped on a
  // busy machine. Node's defaults that this replaces: 60 s (headers), 72 s (Fastify's keep-alive),
  // none for a body or for an upgrade's checks.
  const TIMEOUT_MS = 1000;
  /**
   * About twice the timeout (Node keeps an idle keep-alive connection 1 s past it), with room for a
   * machine shared with other test runs.
   */
  const DROPPED_WITHIN_MS = 2 * TIMEOUT_MS + 2000;
  let app: TestApp;
  const hostiles = new Hostiles();
  const clients: TestClient[] = [];

  beforeAll(async () => {
    // No bound per address here: the timeouts alone must free every descriptor.
    app = await startApp({
      HANDSHAKE_TIMEOUT_MS: String(TIMEOUT_MS),
      MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP: '0',
    });
  });
  afterEach(() => {
    hostiles.destroy();
    clients.splice(0).forEach((client) => client.close());
  });
  afterAll(() => app.close());

  it('drops slow bodies, slow headers, idle and kept-alive connections while a client connects', async () => {
    const token = await app.devToken('slow-body');
    const kinds: Array<[string, string]> = [
      [
        'a ticket request without its body',
        withoutBody('/auth/ws-ticket', `Authorization: Bearer ${token}\r\n`),
      ],
      [
        'a dev-token request with part of its body',
        withoutBody('/auth/dev-token', '', '{"userId":'),
      ],
      ['half-sent upgrade headers', HALF_SENT_UPGRADE],
      ['half-sent request headers', 'POST /auth/ws-ticket HTTP/1.1\r\nHost: 127.0.0.1\r\n'],
      ['an idle connection', ''],
      [
        'a kept-alive connection after its answer',
        'GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      ],
    ];
    const opened = await Promise.all(
      kinds.map(async ([kind, bytes]) => ({
        kind,
        sockets: await hostiles.open(app.port, 50, bytes),
      })),
    );
    const sockets = opened.flatMap((group) => group.sockets);
    await waitUntil(() => held(app.port, sockets) >= 200, 'the server to take most', TIMEOUT_MS);

    const client = await connected((await app.ticket(await app.devToken('meanwhile'))).url);
    clients.push(client);
    expect(client.welcome.user.id).toBe('meanwhile');

    const stillHeld = () =>
      opened.filter((group) => held(app.port, group.sockets) > 0).map((group) => group.kind);
    await waitUntil(
      () => stillHeld().length === 0,
      'the server to drop every slow connection',
      DROPPED_WITHIN_MS,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; still held: ${stillHeld().join(', ')}`);
    });
  });

  it('bounds an upgrade whose checks take long', async () => {
    const { spy, release: finish } = holdNextRedemption(app);
    try {
      const { url } = await app.ticket(await app.devToken('slow-check'));
      const { pathname, search } = new URL(url);
      const sockets = await hostiles.open(app.port, 1, upgrade(`${pathname}${search}`));
      await waitUntil(() => spy.mock.calls.length === 1, 'the ticket check to start');
      await waitUntil(
        () => held(app.port, sockets) === 0,
        'the server to drop the upgrade',
        DROPPED_WITHIN_MS,
      );
      // An operator sees why clients were reset: the handshake's outcome is `timeout`.
      expect((await scrape(app.http)).get(TIMED_OUT)).toBe(1);
    } finally {
      finish();
      spy.mockRestore();
    }
    // The late decision found its socket gone and counts nothing more; the next client is served
    // as usual.
    const accepted = (await scrape(app.http)).get(ACCEPTED) ?? 0;
    clients.push(await connected((await app.ticket(await app.devToken('after'))).url));
    const samples = await scrape(app.http);
    expect(samples.get(ACCEPTED)).toBe(accepted + 1);
    expect(samples.get(TIMED_OUT)).toBe(1);
  });
});

/** docs/operations.md, Slow clients: a socket this server refuses or closes is let go soon. */
describe('Refused and closed sockets hold nothing', () => {
  /** ws' close timeout here is 1 s (`wsCloseTimeoutMs`); its default was 30 s. */
  const LET_GO_WITHIN_MS = 3000;
  let app: TestApp;
  const hostiles = new Hostiles();
  const raw: RawWebSocket[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    app = await startApp();
  });
  afterEach(() => {
    hostiles.destroy();
    raw.splice(0).forEach((socket) => socket.destroy());
    clients.splice(0).forEach((client) => client.close());
  });
  afterAll(() => app.close());

  it('an upgrade refused with an HTTP status, to a client that neither reads nor closes', async () => {
    const sockets = await hostiles.open(
      app.port,
      20,
      upgrade('/ws?ticket=x', 'Origin: https://evil.test\r\n'),
    );
    await waitUntil(
      () => held(app.port, sockets) === 0,
      'the server to let the refused upgrades go',
      LET_GO_WITHIN_MS,
    );
  });

  it('an upgrade refused with a close code (a used ticket: 4001), to a client that never answers it', async () => {
    const { url } = await app.ticket(await app.devToken('used'));
    clients.push(await connected(url));
    const { pathname, search } = new URL(url);
    const refused = await Promise.all(
      Array.from({ length: 20 }, () => RawWebSocket.open(app.port, `${pathname}${search}`)),
    );
    raw.push(...refused);
    for (const socket of refused) {
      expect(await socket.closeCode()).toBe(CloseCode.Unauthorized);
    }
    await waitUntil(
      () => held(app.port, refused) === 0,
      'the server to let the refused sockets go',
      LET_GO_WITHIN_MS,
    );
  });

  it('a socket closed for policy (4009, replaced), whose client never answers', async () => {
    const { url } = await app.ticket(await app.devToken('replaced'));
    const { pathname, search } = new URL(url);
    const first = await RawWebSocket.open(app.port, `${pathname}${search}`);
    raw.push(first);
    clients.push(await connected((await app.ticket(await app.devToken('replaced'))).url));
    expect(await first.closeCode()).toBe(CloseCode.Replaced);
    await waitUntil(
      () => held(app.port, [first]) === 0,
      'the server to let the replaced socket go',
      LET_GO_WITHIN_MS,
    );
  });
});

/** docs/operations.md, Slow clients: MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP. */
describe('A bound per address on connections that have not authenticated', () => {
  const BOUND = 20;
  let app: TestApp;
  const hostiles = new Hostiles();
  const clients: TestClient[] = [];

  /** POSTs from `from` on a connection of its own; the status and the JSON answer. */
  async function postFrom<T>(
    from: string,
    path: string,
    headers: Record<string, string>,
    body = '',
  ): Promise<T> {
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        `${app.http}${path}`,
        {
          method: 'POST',
          localAddress: from,
          agent: false,
          headers: {
            ...headers,
            ...(body === '' ? {} : { 'content-type': 'application/json' }),
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    const { status, text } = await within(answer, `POST ${path} from ${from}`);
    if (status >= 300) {
      throw new Error(`POST ${path} from ${from} answered ${status}: ${text}`);
    }
    return JSON.parse(text) as T;
  }

  /** A real client at `from`: a dev token, a ticket, and the welcome. */
  async function connectFrom(from: string, userId: string): Promise<TestClient> {
    const { accessToken } = await postFrom<DevTokenResponse>(
      from,
      '/auth/dev-token',
      {},
      JSON.stringify({ userId }),
    );
    const { url } = await postFrom<TicketResponse>(from, '/auth/ws-ticket', {
      authorization: `Bearer ${accessToken}`,
    });
    const client = await connected(url, { localAddress: from });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    // HANDSHAKE_TIMEOUT_MS keeps its 5 s default: here the bound alone must keep places free.
    app = await startApp({ MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP: String(BOUND) });
    // The instance's file descriptors, in small: past this many connections the server drops new
    // ones, as it does at its descriptor limit (EMFILE).
    (app.app.getHttpServer() as Server).maxConnections = 100;
  });
  afterEach(() => {
    hostiles.destroy();
    clients.splice(0).forEach((client) => client.close());
  });
  afterAll(() => app.close());

  it('300 idle, half-sent upgrades and bodiless ticket requests from one address do not keep a client at another from connecting', async () => {
    const token = await app.devToken('hostile');
    const watch = { watch: true };
    const sockets = await Promise.all([
      hostiles.open(app.port, 100, '', watch),
      hostiles.open(app.port, 100, HALF_SENT_UPGRADE, watch),
      hostiles.open(
        app.port,
        100,
        withoutBody('/auth/ws-ticket', `Authorization: Bearer ${token}\r\n`),
        watch,
      ),
    ]);
    await waitUntil(
      () => hostiles.closed + held(app.port, sockets.flat()) === 300,
      'the server to take or drop every hostile connection',
    );
    const fromThere = heldSockets(app.port).filter(
      ({ remoteAddress }) => remoteAddress === '127.0.0.1',
    );
    expect(fromThere.length).toBeLessThanOrEqual(BOUND);

    const client = await connectFrom('127.0.0.2', 'bystander');
    expect(client.welcome.user.id).toBe('bystander');
  });

  it('an authenticated socket no longer counts against its address', async () => {
    for (let i = 0; i < BOUND + 5; i++) {
      await connectFrom('127.0.0.3', `member-${i}`);
    }
    const held = heldSockets(app.port).filter(({ remoteAddress }) => remoteAddress === '127.0.0.3');
    expect(held.length).toBeGreaterThanOrEqual(BOUND + 5);
  });
});
