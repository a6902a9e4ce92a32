// A load-driver process: opens and holds a share of the benchmark's clients from its own loopback
// source address, and measures what they see. Driven over IPC by bench/run.mjs.
import { Buffer } from 'node:buffer';
import { Agent, request } from 'node:http';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

const localAddress = process.env.LOCAL_ADDRESS ?? '127.0.0.1';
const secret = new TextEncoder().encode(process.env.JWT_SECRET ?? '');
const agent = new Agent({ keepAlive: true, maxSockets: 64, localAddress });

/** @type {Array<{ socket: WebSocket, user: string, room?: string }>} */
let clients = [];
let drops = 0;
let holding = false;
let received = 0;
let lastAt = 0;
let latencies = [];
let errors = 0;
let listening = null;

async function ticket(httpBase, user) {
  const token = await new SignJWT({ sub: user, name: user, sid: user })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(secret);
  return ticketFor(httpBase, token).catch((error) => {
    throw new Error(`ticket ${error.message}`);
  });
}

/** A ticket for `token` from `httpBase`; a refusal rejects with its status as the message. */
function ticketFor(httpBase, token) {
  return new Promise((resolve, reject) => {
    const req = request(
      `${httpBase}/auth/ws-ticket`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () =>
          res.statusCode === 201
            ? resolve(JSON.parse(text).url)
            : reject(new Error(String(res.statusCode))),
        );
      },
    );
    req.on('error', (error) => reject(new Error(error.code ?? 'http error')));
    req.end();
  });
}

function openClient(url, user, room, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('timeout'));
    }, timeoutMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      if (holding) {
        drops += 1;
      }
      reject(new Error('closed during handshake'));
    });
    socket.on('message', function first(raw) {
      const message = JSON.parse(raw.toString());
      if (message.type === 'welcome' && room) {
        socket.send(JSON.stringify({ type: 'room.join', id: 'join', data: { room } }));
      } else if (
        message.type === 'welcome' ||
        (message.type === 'room.joined' && message.id === 'join')
      ) {
        clearTimeout(timer);
        socket.off('message', first);
        socket.on('message', (data) => onMessage(user, data));
        resolve(socket);
      }
    });
  });
}

function onMessage(user, raw) {
  if (listening === null) {
    return;
  }
  const now = performance.timeOrigin + performance.now();
  if (listening.event === 'room.message' && raw.indexOf(`"text":"${user}@`) < 0) {
    // Chat: other people's messages are counted without parsing them (the driver must stay
    // cheaper than the server it measures); errors still are parsed.
    if (raw.indexOf('"type":"error"') < 0) {
      received += 1;
      lastAt = now;
      return;
    }
  }
  const message = JSON.parse(raw.toString());
  if (message.type === 'error') {
    errors += 1;
  } else if (message.type === listening.event) {
    received += 1;
    lastAt = now;
    if (listening.event === 'room.message') {
      // Chat: the round trip of this client's own messages.
      const [sender, sentAt] = message.data.text.split('@');
      if (sender === user) {
        latencies.push(now - Number(sentAt));
      }
    } else {
      latencies.push(now - message.data.t);
    }
  }
}

async function connect({ http, count, first, prefix, room, concurrency, timeoutMs }) {
  const started = performance.now();
  const connectLatencies = [];
  let failed = 0;
  let next = 0;
  const one = async () => {
    while (next < count) {
      const index = first + next++;
      const user = `${prefix}${index}`;
      const begin = performance.now();
      try {
        const url = await ticket(http, user);
        const roomName = typeof room === 'function' ? room(index) : room;
        const socket = await openClient(url, user, roomName, timeoutMs);
        clients.push({ socket, user });
        connectLatencies.push(performance.now() - begin);
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return {
    ok: connectLatencies.length,
    failed,
    latencies: connectLatencies,
    ms: performance.now() - started,
  };
}

async function chat({ rate, durationMs }) {
  const intervalMs = 1000 / rate;
  const timers = [];
  for (const [i, client] of clients.entries()) {
    // Spread the clients' sends over the interval.
    const start = setTimeout(
      () => {
        timers.push(
          setInterval(() => {
            if (client.socket.readyState === WebSocket.OPEN) {
              const sentAt = performance.timeOrigin + performance.now();
              client.socket.send(
                JSON.stringify({
                  type: 'room.message',
                  data: { room: client.room, text: `${client.user}@${sentAt}` },
                }),
              );
            }
          }, intervalMs),
        );
      },
      (i * intervalMs) / clients.length,
    );
    timers.push(start);
  }
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  timers.forEach((timer) => clearInterval(timer));
}

/**
 * Churn: for `durationMs`, clients that connect, send `rooms` joins at once and close without
 * waiting for the replies, `concurrency` at a time. Answers the cycles done and the failures.
 */
async function churn({ http, prefix, durationMs, rooms, roomPool, concurrency }) {
  const deadline = performance.now() + durationMs;
  let cycles = 0;
  let failed = 0;
  let seq = 0;
  const one = async () => {
    while (performance.now() < deadline) {
      const user = `${prefix}${seq++}`;
      try {
        const url = await ticket(http, user);
        await new Promise((resolve, reject) => {
          const socket = new WebSocket(url, { localAddress, perMessageDeflate: false });
          const timer = setTimeout(() => {
            socket.terminate();
            reject(new Error('timeout'));
          }, 10000);
          socket.on('error', reject);
          socket.on('close', () => {
            clearTimeout(timer);
            resolve();
          });
          socket.once('message', () => {
            for (let i = 0; i < rooms; i++) {
              const room = `churn-${Math.floor(Math.random() * roomPool)}`;
              socket.send(JSON.stringify({ type: 'room.join', data: { room } }));
            }
            socket.close();
          });
        });
        cycles += 1;
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return { cycles, failed };
}

// ---------------------------------------------------------------------------------------------
// recovery: clients that follow a room's stream, drop at once and come back with `since`

/**
 * @type {Array<{ user: string, socket: WebSocket | null, epoch: string, offsets: number[],
 *   reset?: boolean }>}
 */
let followers = [];
const PRESENCE_PREFIX = Buffer.from('{"type":"presence.');

function follow(url, follower, join) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('timeout'));
    }, 30000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('closed'));
    });
    socket.on('message', (raw) => {
      if (
        raw.compare(PRESENCE_PREFIX, 0, PRESENCE_PREFIX.length, 0, PRESENCE_PREFIX.length) === 0
      ) {
        return; // the room's join and leave notices: not what this client checks, and not parsed
      }
      const message = JSON.parse(raw.toString());
      if (message.type === 'welcome') {
        socket.send(JSON.stringify({ type: 'room.join', id: 'join', data: join }));
      } else if (message.type === 'room.joined' && message.id === 'join') {
        clearTimeout(timer);
        follower.socket = socket;
        follower.epoch = message.data.position.epoch;
        (follower.joins ??= []).push([
          follower.offsets.length,
          message.data.position.offset,
          message.data.recovered,
          message.data.missed,
        ]);
        if (!message.data.recovered) {
          // Here, not after the await: frames of one TCP read are all handled before it returns.
          follower.offsets.push(message.data.position.offset);
        }
        resolve(message.data);
      } else if (message.type === 'error' && message.id === 'join') {
        reject(new Error(message.data.code));
      } else if (message.offset !== undefined && message.room !== undefined) {
        follower.offsets.push(message.offset);
      }
    });
  });
}

/** Connects `count` followers of `room` on `http`. */
async function recoveryConnect({ http, count, prefix, room, concurrency }) {
  followers = Array.from({ length: count }, (_, i) => ({
    user: `${prefix}${i}`,
    socket: null,
    epoch: '',
    offsets: [],
  }));
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < followers.length) {
        const follower = followers[next++];
        try {
          await follow(await ticket(http, follower.user), follower, { room });
        } catch {
          failed += 1;
        }
      }
    }),
  );
  return { failed };
}

/**
 * Drops every follower's socket at once, then brings them back on `http` with
 * `room.join { room, since }`: answers how many were recovered or reset, the failures, and when
 * the last one was back (ms after the drop).
 */
async function recoveryReconnect({ http, room, concurrency, droppedAt }) {
  for (const follower of followers) {
    // All listeners: frames still buffered in a dropped socket must not count after `since`.
    follower.socket?.removeAllListeners();
    follower.socket?.on('error', () => undefined);
    follower.socket?.terminate();
    follower.socket = null;
  }
  let recovered = 0;
  let reset = 0;
  let failed = 0;
  let backAt = 0;
  let next = 0;
  const retries = [];
  const back = followers.filter((follower) => follower.epoch !== ''); // those that ever joined
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < back.length) {
        const follower = back[next++];
        for (let attempt = 0; attempt < 5; attempt++) {
          try {
            const since = { epoch: follower.epoch, offset: follower.offsets.at(-1) };
            const joined = await follow(await ticket(http, follower.user), follower, {
              room,
              since,
            });
            if (joined.recovered) {
              recovered += 1;
            } else {
              reset += 1;
              follower.reset = true; // its offsets jump to the position: not a gap
            }
            backAt = Math.max(backAt, performance.timeOrigin + performance.now() - droppedAt);
            break;
          } catch (error) {
            retries.push(String(error.message));
            if (attempt === 4) {
              failed += 1;
            }
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }
      }
    }),
  );
  return { recovered, reset, failed, backMs: backAt, retries };
}

/**
 * Per follower that joined: offsets that came twice or out of order, gaps (the one jump of a
 * follower told to reset is not one), and whether it saw `last`.
 */
function recoveryReport({ last }) {
  let duplicates = 0;
  let gaps = 0;
  let short = 0;
  const samples = [];
  for (const { offsets, reset, joins } of followers.filter((follower) => follower.epoch !== '')) {
    let jumps = 0;
    for (let i = 1; i < offsets.length; i++) {
      if (offsets[i] <= offsets[i - 1]) {
        duplicates += 1;
        if (samples.length < 3) {
          samples.push({ at: i, around: offsets.slice(Math.max(0, i - 4), i + 4), reset, joins });
        }
      } else if (offsets[i] !== offsets[i - 1] + 1) {
        jumps += 1;
      }
    }
    gaps += reset ? Math.max(0, jumps - 1) : jumps;
    if (offsets.at(-1) !== last) {
      short += 1;
    }
  }
  followers.forEach((follower) => follower.socket?.terminate());
  followers = [];
  return { duplicates, gaps, short, samples };
}

// ---------------------------------------------------------------------------------------------
// storm: clients of an instance that drains come back to another one, with the token they hold

/** @type {WebSocket[]} */
let stormSockets = [];
let storm = { back: 0, failed: 0, lastBackAt: 0, refusals: {} };

/** Opens a socket and resolves at its welcome; rejects with the close code. */
function welcomed(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('timeout'));
    }, 20000);
    socket.on('error', () => undefined);
    socket.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`close ${code}`));
    });
    socket.once('message', () => {
      clearTimeout(timer); // the first frame is the welcome
      resolve(socket);
    });
  });
}

/**
 * Like the SDK: after a close, wait a jittered moment, fetch a ticket with the same token and
 * reconnect, backing off (jittered, doubling, at most 5 s) on a refusal; gives up after 30 tries.
 */
async function comeBack(httpBase, token) {
  let delayMs = 250;
  for (let attempt = 0; attempt < 30; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, Math.random() * delayMs));
    try {
      const socket = await welcomed(await ticketFor(httpBase, token));
      stormSockets.push(socket);
      storm.back += 1;
      storm.lastBackAt = performance.timeOrigin + performance.now();
      return;
    } catch (error) {
      storm.refusals[error.message] = (storm.refusals[error.message] ?? 0) + 1;
      delayMs = Math.min(2 * delayMs, 5000);
    }
  }
  storm.failed += 1;
}

/** Connects `count` clients to `http`; each one comes back to `fallback` when its socket closes. */
async function stormConnect({ http, fallback, count, first, prefix, concurrency }) {
  storm = { back: 0, failed: 0, lastBackAt: 0, refusals: {} };
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const user = `${prefix}${first + next++}`;
        const token = await new SignJWT({ sub: user, name: user, sid: user })
          .setProtectedHeader({ alg: 'HS256' })
          .setExpirationTime('2h')
          .sign(secret);
        try {
          const socket = await welcomed(await ticketFor(http, token));
          stormSockets.push(socket);
          socket.once('close', () => void comeBack(fallback, token));
        } catch {
          failed += 1;
        }
      }
    }),
  );
  return { failed };
}

process.on('message', async ({ id, cmd, args }) => {
  let result = null;
  if (cmd === 'connect') {
    const rooms = args.rooms;
    result = await connect({
      ...args,
      room: rooms ? (index) => `room-${index % rooms}` : args.room,
    });
    if (rooms) {
      for (const client of clients) {
        client.room = `room-${Number(client.user.slice(args.prefix.length)) % rooms}`;
      }
    }
  } else if (cmd === 'hold') {
    holding = true;
    drops = 0;
  } else if (cmd === 'listen') {
    listening = { event: args.event };
    received = 0;
    lastAt = 0;
    errors = 0;
    latencies = [];
  } else if (cmd === 'chat') {
    await chat(args);
  } else if (cmd === 'churn') {
    result = await churn(args);
  } else if (cmd === 'recoveryConnect') {
    result = await recoveryConnect(args);
  } else if (cmd === 'recoveryReconnect') {
    result = await recoveryReconnect(args);
  } else if (cmd === 'recoveryReport') {
    result = recoveryReport(args);
  } else if (cmd === 'stormConnect') {
    result = await stormConnect(args);
  } else if (cmd === 'stormStatus') {
    result = storm;
  } else if (cmd === 'stormClose') {
    stormSockets.forEach((socket) => {
      socket.removeAllListeners('close');
      socket.terminate();
    });
    stormSockets = [];
  } else if (cmd === 'count') {
    result = { received };
  } else if (cmd === 'report') {
    result = {
      received,
      lastAt,
      errors,
      latencies,
      drops,
      open: clients.filter((c) => c.socket.readyState === WebSocket.OPEN).length,
    };
    listening = null;
  } else if (cmd === 'close') {
    holding = false;
    clients.forEach((client) => client.socket.terminate());
    clients = [];
  }
  process.send({ id, result });
});
