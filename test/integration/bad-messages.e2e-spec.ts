import { CloseCode, type ErrorData, type TransportKind } from '@switchboard/protocol';
import { startApp, type TestApp } from '../support/app';
import { RawWebSocket } from '../support/raw-ws';
import { suiteRedis, testPrefix } from '../support/redis';
import { type SseTestClient, sseConnected } from '../support/sse-client';
import { connected, type FrameRecorder, TestClient, within } from '../support/ws-client';

/** Where a client of either transport tells how it closed. */
const closedOf = (client: FrameRecorder) =>
  client instanceof TestClient ? client.closed : (client as SseTestClient).closed;

/**
 * Object frames go over both transports. Raw text (`raw`) and socket-level closes are the
 * WebSocket's own unless `sse` says the case holds over Server-Sent Events too (a POST's body
 * must be a JSON object or an array of them, so other text is refused there with a 400).
 */
type Case =
  | { name: string; send: unknown; error: string; fields?: string[]; raw?: false }
  | { name: string; send: string; error: string; fields?: string[]; raw: true; sse?: true }
  | { name: string; close: number; act: (client: FrameRecorder) => void; sse: true }
  | { name: string; close: number; act: (client: TestClient) => void; sse?: false };

const deep = (levels: number): unknown => (levels === 0 ? 1 : { a: deep(levels - 1) });

/** Every case gets a fresh socket that has joined room "lobby". */
const CASES: Case[] = [
  { name: 'text that is not JSON', send: 'hello', raw: true, error: 'bad_json' },
  { name: 'truncated JSON', send: '{"type":"ping"', raw: true, error: 'bad_json' },
  { name: 'an empty frame', send: '', raw: true, error: 'bad_json' },
  { name: 'a JSON array', send: '[{"type":"ping"}]', raw: true, error: 'bad_envelope' },
  { name: 'a JSON string', send: '"ping"', raw: true, error: 'bad_envelope' },
  { name: 'a JSON number', send: '42', raw: true, error: 'bad_envelope' },
  { name: 'JSON null', send: 'null', raw: true, error: 'bad_envelope' },
  { name: 'an object without type', send: {}, error: 'bad_envelope', fields: ['type'] },
  { name: 'a numeric type', send: { type: 5 }, error: 'bad_envelope', fields: ['type'] },
  { name: 'an empty type', send: { type: '' }, error: 'bad_envelope', fields: ['type'] },
  {
    name: 'a 65-char type',
    send: { type: 'x'.repeat(65) },
    error: 'bad_envelope',
    fields: ['type'],
  },
  { name: 'a numeric id', send: { type: 'ping', id: 5 }, error: 'bad_envelope', fields: ['id'] },
  {
    name: 'a 65-char id',
    send: { type: 'ping', id: 'i'.repeat(65) },
    error: 'bad_envelope',
    fields: ['id'],
  },
  {
    name: 'string data',
    send: { type: 'ping', data: 'x' },
    error: 'bad_envelope',
    fields: ['data'],
  },
  {
    name: 'array data',
    send: { type: 'ping', data: [1] },
    error: 'bad_envelope',
    fields: ['data'],
  },
  {
    name: 'an extra envelope field',
    send: { type: 'ping', extra: 1 },
    error: 'bad_envelope',
    fields: ['extra'],
  },
  {
    name: '__proto__ in the envelope',
    send: '{"type":"ping","__proto__":{"admin":true}}',
    raw: true,
    sse: true,
    error: 'bad_envelope',
    fields: ['__proto__'],
  },
  { name: 'an unknown type', send: { type: 'launch.rockets' }, error: 'unknown_type' },
  {
    name: 'data on ping',
    send: { type: 'ping', data: { x: 1 } },
    error: 'validation_failed',
    fields: ['x'],
  },
  {
    name: 'room.join without data',
    send: { type: 'room.join' },
    error: 'validation_failed',
    fields: ['room'],
  },
  {
    name: 'a numeric room',
    send: { type: 'room.join', data: { room: 5 } },
    error: 'validation_failed',
    fields: ['room'],
  },
  {
    name: 'a nested room',
    send: { type: 'room.join', data: { room: { a: { b: [1] } } } },
    error: 'validation_failed',
    fields: ['room'],
  },
  {
    name: 'deeply nested data',
    send: { type: 'room.join', data: deep(200) },
    error: 'validation_failed',
    fields: ['a'],
  },
  {
    name: 'constructor in data',
    send: { type: 'room.join', data: { room: 'a', constructor: 1 } },
    error: 'validation_failed',
    fields: ['constructor'],
  },
  {
    name: '__proto__ in data',
    send: '{"type":"room.join","data":{"room":"a","__proto__":{"polluted":true}}}',
    raw: true,
    error: 'validation_failed',
    fields: ['__proto__'],
  },
  {
    name: 'a 65-char room name',
    send: { type: 'room.join', data: { room: 'r'.repeat(65) } },
    error: 'validation_failed',
    fields: ['room'],
  },
  {
    name: 'a room name with a space',
    send: { type: 'room.join', data: { room: 'two words' } },
    error: 'validation_failed',
    fields: ['room'],
  },
  {
    name: 'a room name starting with -',
    send: { type: 'room.join', data: { room: '-x' } },
    error: 'validation_failed',
    fields: ['room'],
  },
  {
    name: 'joining user:x',
    send: { type: 'room.join', data: { room: 'user:x' } },
    error: 'forbidden',
  },
  {
    name: 'a message to a room not joined',
    send: { type: 'room.message', data: { room: 'elsewhere', text: 'hi' } },
    error: 'not_member',
  },
  {
    name: 'an empty text',
    send: { type: 'room.message', data: { room: 'lobby', text: '' } },
    error: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'a 4001-char text',
    send: { type: 'room.message', data: { room: 'lobby', text: 't'.repeat(4001) } },
    error: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'a numeric text',
    send: { type: 'room.message', data: { room: 'lobby', text: 7 } },
    error: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'a text of control characters only',
    send: { type: 'room.message', data: { room: 'lobby', text: '\u0000\u202e\u0007' } },
    error: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'a message without text',
    send: { type: 'room.message', data: { room: 'lobby' } },
    error: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'leaving a room not joined',
    send: { type: 'room.leave', data: { room: 'elsewhere' } },
    error: 'not_member',
  },
  {
    name: 'typing in a room not joined',
    send: { type: 'typing', data: { room: 'elsewhere' } },
    error: 'not_member',
  },
  {
    name: 'listing a room not joined',
    send: { type: 'presence.list', data: { room: 'elsewhere' } },
    error: 'not_member',
  },
  {
    name: 'refreshing with garbage',
    send: { type: 'session.refresh', data: { token: 'garbage' } },
    error: 'forbidden',
  },
  {
    name: 'refreshing without a token',
    send: { type: 'session.refresh', data: {} },
    error: 'validation_failed',
    fields: ['token'],
  },
  {
    name: '10,241 bytes',
    close: CloseCode.MessageTooBig,
    act: (c: FrameRecorder) => c.send(JSON.stringify({ type: 'ping' }).padEnd(10_241, ' ')),
    sse: true,
  },
  {
    name: '20 KB',
    close: CloseCode.MessageTooBig,
    act: (c: TestClient) => c.socket.send('x'.repeat(20_480)),
  },
  {
    name: 'a binary frame',
    close: CloseCode.UnsupportedData,
    act: (c: TestClient) => c.socket.send(Buffer.from('{"type":"ping"}'), { binary: true }),
  },
  {
    name: 'invalid UTF-8 in a text frame',
    close: CloseCode.InvalidPayload,
    act: (c: TestClient) => c.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false }),
  },
];

const MODES: Array<[string, TransportKind, boolean]> = [
  ['embedded', 'websocket', false],
  ['cluster', 'websocket', true],
  ['embedded', 'sse', false],
  ['cluster', 'sse', true],
];

const overBoth = (c: Case): boolean => !('raw' in c && c.raw === true) && !('close' in c);

describe.each(MODES)('bad messages (%s mode, %s)', (_mode, transport, cluster) => {
  let app: TestApp;
  let bystander: FrameRecorder;
  let stopRedis: () => Promise<void> = () => Promise.resolve();
  let seq = 0;
  const open: FrameRecorder[] = [];
  const cases =
    transport === 'websocket'
      ? CASES
      : CASES.filter((c) => overBoth(c) || ('sse' in c && c.sse === true));

  async function member(token?: string): Promise<FrameRecorder> {
    const { url, ticket } = await app.ticket(token ?? (await app.devToken(`bad${++seq}`)));
    const client =
      transport === 'websocket'
        ? await connected(url)
        : await sseConnected(app.http, `/sse?ticket=${ticket}`);
    open.push(client);
    client.send({ type: 'room.join', id: 'j', data: { room: 'lobby' } });
    await client.nextOfType('room.joined');
    return client;
  }

  beforeAll(async () => {
    // The bystander pings after every case: lift the per-socket rate limit (tested on its own).
    const env: Record<string, string> = {
      CONNECT_ATTEMPTS_PER_MINUTE: '1000',
      TICKETS_PER_MINUTE: '1000',
      WS_MESSAGES_PER_WINDOW: '1000',
    };
    if (cluster) {
      const redis = await suiteRedis();
      stopRedis = redis.stop;
      Object.assign(env, { REDIS_URL: redis.url, REDIS_PREFIX: testPrefix() });
    }
    app = await startApp(env);
    bystander = await member();
  });
  afterEach(async () => {
    // After every case the server still serves everyone else.
    bystander.send({ type: 'ping', id: 'alive' });
    expect((await bystander.nextOfType('pong')).id).toBe('alive');
    open.splice(1).forEach((client) => client.close());
  });
  afterAll(async () => {
    open.forEach((client) => client.close());
    await app.close();
    await stopRedis();
  });

  it('has at least 30 cases (25 over Server-Sent Events)', () => {
    expect(cases.length).toBeGreaterThanOrEqual(transport === 'websocket' ? 30 : 25);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, testCase) => {
    const client = await member();
    if ('close' in testCase) {
      (testCase.act as (client: FrameRecorder) => void)(client);
      expect((await within(closedOf(client), 'close')).code).toBe(testCase.close);
      return;
    }
    client.send(testCase.raw ? testCase.send : JSON.stringify(testCase.send));
    const frame = await client.nextOfType<ErrorData>('error');
    expect(frame.data?.code).toBe(testCase.error);
    expect(typeof frame.data?.message).toBe('string');
    if (testCase.fields) {
      expect(Object.keys((frame.data?.details as { fields: object }).fields)).toEqual(
        testCase.fields,
      );
    }
    // Errors never close the socket by themselves.
    client.send({ type: 'ping', id: 'after' });
    expect((await client.nextOfType('pong')).id).toBe('after');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('passes a message of exactly 10,240 bytes', async () => {
    const client = await member();
    const text = JSON.stringify({ type: 'ping', id: 'max' }).padEnd(10_240, ' ');
    expect(Buffer.byteLength(text)).toBe(10_240);
    client.send(text);
    expect((await client.nextOfType('pong')).id).toBe('max');
  });

  it('refuses a room outside the token’s rooms claim with forbidden', async () => {
    const { hsToken } = await import('../support/jwt');
    const client = await member(
      await hsToken({ sub: `claim${++seq}`, rooms: ['lobby', 'team-42:*'] }),
    );
    client.send({ type: 'room.join', id: 'ok', data: { room: 'team-42:general' } });
    expect((await client.nextOfType('room.joined')).id).toBe('ok');
    client.send({ type: 'room.join', id: 'no', data: { room: 'team-43:general' } });
    const frame = await client.nextOfType<ErrorData>('error');
    expect([frame.id, frame.data?.code]).toEqual(['no', 'forbidden']);
  });

  // WebSocket framing itself: nothing of it exists over Server-Sent Events.
  if (transport === 'websocket') {
    it.each([
      ['an unmasked client frame', Buffer.from([0x81, 0x02, 0x68, 0x69])],
      ['a reserved bit (RSV1 without an extension)', RawWebSocket.masked(0xc1, Buffer.from('hi'))],
      ['a reserved opcode', RawWebSocket.masked(0x83, Buffer.from('hi'))],
      ['a fragmented control frame', RawWebSocket.masked(0x09, Buffer.from('hi'))],
    ])('closes with 1002 on %s', async (_name, frame) => {
      const { ticket } = await app.ticket(await app.devToken(`raw${++seq}`));
      const raw = await RawWebSocket.open(app.port, `/ws?ticket=${ticket}`);
      try {
        raw.write(frame);
        expect(await raw.closeCode()).toBe(CloseCode.ProtocolError);
      } finally {
        raw.destroy();
      }
    });
  }
});
