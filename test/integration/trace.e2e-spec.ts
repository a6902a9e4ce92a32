import { request } from 'node:http';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { type TracedFrame, Tracer } from '../../libs/nest/src/realtime/trace/tracer';
import { startApp, type TestApp, twoInstances, waitUntil } from '../support/app';
import { type RedisBackend, startBackend } from '../support/backends';
import { sseConnected } from '../support/sse-client';
import { connected, within } from '../support/ws-client';

const ADMIN_TOKEN = 'trace-test-admin-token-0123456789abcdef';

interface TraceEvent {
  event: string;
  data: unknown;
}

/** Reads `GET /admin/trace` to its end: the status, and every event. */
function readTrace(
  app: TestApp,
  query: string,
  headers: Record<string, string> = {
    authorization: `Bearer ${ADMIN_TOKEN}`,
    'x-admin-user': 'support@example.com',
  },
): { status: Promise<number>; events: TraceEvent[]; ended: Promise<void> } {
  const events: TraceEvent[] = [];
  let resolveStatus!: (status: number) => void;
  const status = new Promise<number>((resolve) => (resolveStatus = resolve));
  const ended = new Promise<void>((resolve) => {
    const req = request(`${app.http}/admin/trace?${query}`, { headers }, (res) => {
      resolveStatus(res.statusCode ?? 0);
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data !== undefined) {
            events.push({ event, data: JSON.parse(data) as unknown });
          }
        }
      });
      res.on('end', () => resolve());
      res.on('close', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
  return { status, events, ended };
}

describe('GET /admin/trace without ADMIN_TOKEN', () => {
  it('does not exist', async () => {
    const app = await startApp();
    try {
      const response = await fetch(`${app.http}/admin/trace?userId=x`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(response.status).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('GET /admin/trace across instances', () => {
  let backend: RedisBackend;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    backend = await startBackend('single');
    [a, b] = await twoInstances({
      ...backend.env(),
      ADMIN_TOKEN,
      MAX_CONNECTIONS_PER_USER: '2',
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await backend?.stop();
  }, 30_000);

  const watchedEverywhere = (userId: string) =>
    waitUntil(
      () => Promise.resolve([a, b].every((app) => app.app.get(Tracer).watching(userId))),
      'every instance following the user',
    );

  it('refuses without the token, and a trace longer than 60 s', async () => {
    expect((await fetch(`${a.http}/admin/trace?userId=x`)).status).toBe(401);
    const wrong = await fetch(`${a.http}/admin/trace?userId=x`, {
      headers: { authorization: 'Bearer wrong' },
    });
    expect([wrong.status, wrong.headers.get('www-authenticate')]).toEqual([401, 'Bearer']);
    const long = await fetch(`${a.http}/admin/trace?userId=x&seconds=61`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(long.status).toBe(400);
  });

  it("streams the user's frames from every instance, sizes only, then ends; each use is logged", async () => {
    const onB = await connected((await b.ticket(await b.devToken('traced'))).url);
    const { ticket } = await a.ticket(await a.devToken('traced'));
    const onA = await sseConnected(a.http, `/sse?ticket=${ticket}`);
    const other = await connected((await a.ticket(await a.devToken('not-traced'))).url);
    try {
      const trace = readTrace(a, 'userId=traced&seconds=2');
      expect(await trace.status).toBe(200);
      await watchedEverywhere('traced');
      onB.send({ type: 'ping', id: 'from-b' });
      onA.send({ type: 'ping', id: 'from-a' });
      other.send({ type: 'ping', id: 'other' });
      await a.app.get(BroadcastService).toUser('traced', 'invoice.paid', { secret: 'hunter2' });
      await Promise.all([onB.nextOfType('invoice.paid'), onA.nextOfType('invoice.paid')]);
      await within(trace.ended, 'the end of the trace', 4_000);

      const frames = trace.events
        .filter((e) => e.event === 'frame')
        .map((e) => e.data as TracedFrame);
      const seen = frames.map((f) => `${f.transport} ${f.direction} ${f.type}`).sort();
      expect(seen).toEqual(
        [
          'websocket in ping',
          'websocket out pong',
          'websocket out invoice.paid',
          'sse in ping',
          'sse out pong',
          'sse out invoice.paid',
        ].sort(),
      );
      expect(new Set(frames.map((f) => f.instance)).size).toBe(2);
      expect(frames.every((f) => f.bytes > 0 && f.payload === undefined)).toBe(true);
      expect(JSON.stringify(trace.events)).not.toContain('hunter2');
      expect(trace.events.at(-1)).toEqual({ event: 'end', data: { userId: 'traced' } });
      // Nest's logger is the process's: the line lands in whichever capture was set last.
      const logged = [...a.logs.parsed(), ...b.logs.parsed()];
      expect(logged.find((line) => line.msg === 'trace started')).toMatchObject({
        userId: 'traced',
        seconds: 2,
        payloads: false,
        askedBy: 'support@example.com',
      });
    } finally {
      onA.close();
      onB.close();
      other.close();
    }
  });

  it('carries the frames themselves with payloads=true', async () => {
    const client = await connected((await b.ticket(await b.devToken('traced-full'))).url);
    try {
      const trace = readTrace(a, 'userId=traced-full&seconds=1&payloads=true');
      expect(await trace.status).toBe(200);
      await watchedEverywhere('traced-full');
      client.send({ type: 'ping', id: 'with-payload' });
      await client.nextOfType('pong');
      await within(trace.ended, 'the end of the trace', 3_000);
      const incoming = trace.events
        .map((e) => e.data as TracedFrame)
        .find((f) => f.direction === 'in');
      expect(incoming?.payload).toBe('{"type":"ping","id":"with-payload"}');
    } finally {
      client.close();
    }
  });
});
