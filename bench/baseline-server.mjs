// The thinnest server with Switchboard's observable semantics, for comparison in `npm run bench`:
// an HTTP ticket endpoint on an in-memory map, a /ws?ticket= upgrade, a welcome frame, ping/pong
// heartbeats, rooms with room.message, POST /publish broadcasting one serialized frame, and Redis
// pub/sub between instances when REDIS_URL is set. No auth, validation, limits or metrics.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Redis from 'ioredis';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 0);
const heartbeatMs = Number(process.env.WS_HEARTBEAT_MS ?? 30000);
const instance = randomBytes(8).toString('hex');
const tickets = new Map();
const rooms = new Map();
const sockets = new Set();

const redis = process.env.REDIS_URL ? new Redis(process.env.REDIS_URL) : null;
const subscriber = process.env.REDIS_URL ? new Redis(process.env.REDIS_URL) : null;
if (subscriber) {
  await subscriber.subscribe('baseline:publish');
  subscriber.on('message', (_channel, message) => {
    const newline = message.indexOf('\n');
    const [origin, room] = message.slice(0, newline).split('|');
    if (origin !== instance) {
      deliver(room, message.slice(newline + 1));
    }
  });
}

function deliver(room, frame) {
  for (const socket of room ? (rooms.get(room) ?? []) : sockets) {
    if (socket.readyState === 1) {
      socket.send(frame);
    }
  }
}

function body(req) {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => resolve(text));
  });
}

const server = createServer(async (req, res) => {
  if (req.method === 'POST' && req.url === '/auth/ws-ticket') {
    const ticket = randomBytes(32).toString('base64url');
    const user = (req.headers.authorization ?? '').slice(-16) || 'anonymous';
    tickets.set(ticket, { user, expires: Date.now() + 30000 });
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        ticket,
        expiresIn: 30,
        url: `ws://${req.headers.host}/ws?ticket=${ticket}`,
      }),
    );
    return;
  }
  if (req.method === 'POST' && req.url === '/publish') {
    const { room, event, data } = JSON.parse(await body(req));
    const frame = JSON.stringify({ type: event, data, ts: Date.now() });
    redis?.publish('baseline:publish', `${instance}|${room ?? ''}\n${frame}`);
    deliver(room, frame);
    res.writeHead(202).end();
    return;
  }
  res.writeHead(404).end();
});

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 10240,
  perMessageDeflate: false,
  clientTracking: false,
});
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  const claims =
    url.pathname === '/ws' ? tickets.get(url.searchParams.get('ticket') ?? '') : undefined;
  tickets.delete(url.searchParams.get('ticket') ?? '');
  if (!claims || claims.expires < Date.now()) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.add(ws);
    ws.alive = true;
    ws.rooms = new Set();
    ws.on('pong', () => (ws.alive = true));
    ws.on('message', (raw) => {
      let message;
      try {
        message = JSON.parse(raw.toString());
      } catch {
        return;
      }
      if (message.type === 'ping') {
        ws.send(JSON.stringify({ type: 'pong', id: message.id, ts: Date.now() }));
      } else if (message.type === 'room.join') {
        const room = message.data.room;
        if (!rooms.has(room)) {
          rooms.set(room, new Set());
        }
        rooms.get(room).add(ws);
        ws.rooms.add(room);
        ws.send(
          JSON.stringify({ type: 'room.joined', id: message.id, data: { room }, ts: Date.now() }),
        );
      } else if (message.type === 'room.message') {
        const { room, text } = message.data;
        const frame = JSON.stringify({
          type: 'room.message',
          data: { room, from: { id: claims.user }, text },
          ts: Date.now(),
        });
        redis?.publish('baseline:publish', `${instance}|${room}\n${frame}`);
        deliver(room, frame);
      }
    });
    ws.on('close', () => {
      sockets.delete(ws);
      for (const room of ws.rooms) {
        rooms.get(room)?.delete(ws);
      }
    });
    ws.send(
      JSON.stringify({ type: 'welcome', data: { user: { id: claims.user } }, ts: Date.now() }),
    );
  });
});

setInterval(() => {
  for (const ws of sockets) {
    if (!ws.alive) {
      ws.terminate();
      continue;
    }
    ws.alive = false;
    ws.ping();
  }
}, heartbeatMs).unref();

server.listen(port, '127.0.0.1', () => {
  console.log(
    JSON.stringify({ msg: 'baseline listening', url: `http://127.0.0.1:${server.address().port}` }),
  );
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
