// A load-driver process of the `scale` benchmark (bench/scale.mjs): opens its share of the
// clients from its own loopback source address, spread over every instance, holds them while the
// server's heartbeats run (ws answers each ping with a pong), and reports what they saw: drops,
// and every `scale.*` event with its publish-to-receipt time. Driven over IPC.
import { Buffer } from 'node:buffer';
import { Agent, request } from 'node:http';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

const localAddress = process.env.LOCAL_ADDRESS ?? '127.0.0.1';
const secret = new TextEncoder().encode(process.env.JWT_SECRET ?? '');
/** Ticket requests: a few keep-alive sockets per instance, so that they use few client ports. */
const agent = new Agent({ keepAlive: true, maxSockets: 16, localAddress });

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @typedef {{ socket: WebSocket, user: string, index: number, target: number,
 *   seen: Record<string, number>, join?: { resolve: Function, reject: Function } }} Client
 */
/** @type {Client[]} */
let clients = [];
let drops = 0;
/** The server's heartbeat pings the clients answered (ws sends the pong by itself). */
let pings = 0;
/** Close codes of the drops, by code. */
let dropCodes = {};
/** Frames other than the ones below, by type (presence notices, session notices, errors). */
let otherFrames = {};
/** Per `scale.*` event key (`<kind>:<n>`): receipts, duplicates, and receipt − publish in ms. */
let receipts = new Map();

// ---------------------------------------------------------------------------------------------
// the worker's own event-loop lag: a late timer here is the driver's fault, not the server's

const LAG_SAMPLE_MS = 100;
let maxLagMs = 0;
let stalls = 0;
let expected = performance.now() + LAG_SAMPLE_MS;
setInterval(() => {
  const lag = performance.now() - expected;
  maxLagMs = Math.max(maxLagMs, lag);
  if (lag >= 1000) {
    stalls += 1;
  }
  expected = performance.now() + LAG_SAMPLE_MS;
}, LAG_SAMPLE_MS).unref();

// ---------------------------------------------------------------------------------------------
// connecting

/** A failed attempt: its reason (for the retry counts) and the server's hint, if any. */
class Attempt extends Error {
  constructor(reason, retryAfterMs = 0) {
    super(reason);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The user's own HS256 access token, as a host application would issue it. */
function accessToken(user) {
  return new SignJWT({ sub: user, name: user, sid: user })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(secret);
}

/**
 * Where and how `user` upgrades: with `auth` = 'ticket', a ticket URL fetched from `httpBase`
 * with the user's access token; with 'bearer', the plain URL and the token in `Authorization`.
 */
async function credentials(httpBase, user, auth) {
  const token = await accessToken(user);
  if (auth === 'bearer') {
    return {
      url: `${httpBase.replace(/^http/, 'ws')}/ws`,
      headers: { authorization: `Bearer ${token}` },
    };
  }
  return { url: await ticket(httpBase, token), headers: {} };
}

/** A ticket URL from `httpBase` for the holder of `token`. */
function ticket(httpBase, token) {
  return new Promise((resolve, reject) => {
    const req = request(
      `${httpBase}/auth/ws-ticket`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode === 201) {
            resolve(JSON.parse(text).url);
          } else {
            reject(new Attempt(`ticket ${res.statusCode}`, hintMs(res, text)));
          }
        });
      },
    );
    req.setTimeout(20000, () => req.destroy(new Error('timeout')));
    req.on('error', (error) => reject(new Attempt(`ticket ${error.code ?? error.message}`)));
    req.end();
  });
}

/** The server's time to come back: `{ retryAfterMs }` in the body, else `Retry-After`. */
function hintMs(res, text) {
  try {
    const body = JSON.parse(text);
    if (Number.isFinite(body.retryAfterMs)) {
      return body.retryAfterMs;
    }
  } catch {
    // not JSON: the header below, if any
  }
  const seconds = Number(res.headers['retry-after']);
  return Number.isFinite(seconds) ? seconds * 1000 : 0;
}

const WELCOME = Buffer.from('{"type":"welcome"');
const SCALE = Buffer.from('{"type":"scale.');
const JOINED = Buffer.from('{"type":"room.joined"');
const ERROR = Buffer.from('{"type":"error"');
const startsWith = (raw, prefix) =>
  raw.length >= prefix.length && raw.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

/** Opens one socket and resolves at its welcome. */
function open({ url, headers }, client, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false, headers });
    const fail = (error) => {
      clearTimeout(timer);
      socket.removeAllListeners('unexpected-response');
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      socket.removeAllListeners('message');
      socket.on('error', () => undefined);
      socket.terminate();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Attempt('upgrade timeout')), timeoutMs);
    socket.on('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => fail(new Attempt(`upgrade ${res.statusCode}`, hintMs(res, text))));
      res.on('error', () => fail(new Attempt(`upgrade ${res.statusCode}`)));
    });
    socket.on('error', (error) => fail(new Attempt(`upgrade ${error.code ?? 'error'}`)));
    socket.on('close', (code) => fail(new Attempt(`closed ${code} before the welcome`)));
    socket.once('message', (raw) => {
      if (!startsWith(raw, WELCOME)) {
        fail(new Attempt('no welcome'));
        return;
      }
      clearTimeout(timer);
      socket.removeAllListeners('unexpected-response');
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      client.socket = socket;
      socket.client = client;
      socket.on('error', () => undefined);
      socket.on('close', onClose);
      socket.on('message', onMessage);
      socket.on('ping', onPing);
      resolve();
    });
  });
}

/**
 * Connects `count` clients, global indexes `first`…, client i to `targets[i % targets.length]`
 * (so that every instance gets clients from every source address), `concurrency` at a time.
 * A failed attempt is retried after the server's hint (or a short jittered wait), with fresh
 * credentials (a ticket is single-use), until `attempts` were made or `boundMs` passed.
 */
async function connect({
  targets,
  count,
  first,
  prefix,
  concurrency,
  timeoutMs,
  attempts,
  boundMs,
  auth,
}) {
  const started = performance.now();
  const deadline = started + boundMs;
  const retries = {};
  const latencies = [];
  let failed = 0;
  let next = 0;
  const one = async () => {
    while (next < count) {
      const index = first + next++;
      const target = index % targets.length;
      const client = {
        socket: null,
        user: `${prefix}${index}`,
        index,
        target,
        // The round of one client per instance: room members are whole rounds, so that the
        // room has members on every instance.
        round: Math.floor(index / targets.length),
        seen: {},
      };
      const begin = performance.now();
      for (let attempt = 1; ; attempt++) {
        try {
          await open(await credentials(targets[target], client.user, auth), client, timeoutMs);
          clients.push(client);
          latencies.push(performance.now() - begin);
          break;
        } catch (error) {
          const reason = error instanceof Attempt ? error.message : String(error.message);
          retries[reason] = (retries[reason] ?? 0) + 1;
          if (attempt >= attempts || performance.now() > deadline) {
            failed += 1;
            break;
          }
          const wait = error.retryAfterMs || 250 * attempt;
          await sleep(wait * (1 + Math.random() * 0.2));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return { ok: latencies.length, failed, retries, latencies, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------------------------
// holding: every socket shares these two listeners (ws calls them with the socket as `this`)

function onPing() {
  pings += 1;
}

function onClose(code) {
  if (!this.client.closed) {
    drops += 1;
    dropCodes[code] = (dropCodes[code] ?? 0) + 1;
  }
  const pending = this.client.join;
  if (pending !== undefined) {
    this.client.join = undefined;
    pending.reject(new Error(`closed ${code}`));
  }
}

function onMessage(raw) {
  const client = this.client;
  if (startsWith(raw, SCALE)) {
    // { type: 'scale.all' | 'scale.room', data: { k, n, t }, … }: parsed (rare, and timed)
    const at = now();
    const { data } = JSON.parse(raw.toString());
    const key = `${data.k}:${data.n}`;
    let entry = receipts.get(key);
    if (entry === undefined) {
      entry = { count: 0, dups: 0, ms: {}, last: 0 };
      receipts.set(key, entry);
    }
    if (client.seen[data.k] === data.n) {
      entry.dups += 1;
      return;
    }
    client.seen[data.k] = data.n;
    entry.count += 1;
    const ms = Math.max(0, Math.round(at - data.t));
    entry.ms[ms] = (entry.ms[ms] ?? 0) + 1;
    entry.last = Math.max(entry.last, at);
  } else if (startsWith(raw, JOINED) || startsWith(raw, ERROR)) {
    const message = JSON.parse(raw.toString());
    const pending = client.join;
    if (message.id === 'scale-join' && pending !== undefined) {
      client.join = undefined;
      if (message.type === 'room.joined') {
        pending.resolve();
      } else {
        pending.reject(new Error(message.data?.code ?? 'error'));
      }
    } else {
      otherFrames[message.type] = (otherFrames[message.type] ?? 0) + 1;
    }
  } else {
    // Presence and session notices: counted by type without parsing the whole frame.
    const end = raw.indexOf(34, 9); // the quote closing the type
    const type = end > 9 ? raw.toString('utf8', 9, end) : '?';
    otherFrames[type] = (otherFrames[type] ?? 0) + 1;
  }
}

/**
 * The clients of every `every`-th round (one client per instance each) join `room`, spread evenly over
 * `spreadMs`; answers how many joined, were refused (by error code) or got no answer in time.
 */
async function join({ room, every, spreadMs, timeoutMs }) {
  const members = clients.filter((client) => client.round % every === 0);
  const refused = {};
  let joined = 0;
  let unanswered = 0;
  const started = performance.now();
  await Promise.all(
    members.map(async (client, i) => {
      await sleep((i * spreadMs) / Math.max(1, members.length));
      if (client.socket.readyState !== WebSocket.OPEN) {
        refused.closed = (refused.closed ?? 0) + 1;
        return;
      }
      try {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            client.join = undefined;
            reject(new Error('timeout'));
          }, timeoutMs);
          client.join = {
            resolve: () => (clearTimeout(timer), resolve()),
            reject: (error) => (clearTimeout(timer), reject(error)),
          };
          client.socket.send(
            JSON.stringify({ type: 'room.join', id: 'scale-join', data: { room } }),
          );
        });
        client.member = true;
        joined += 1;
      } catch (error) {
        if (error.message === 'timeout') {
          unanswered += 1;
        } else {
          refused[error.message] = (refused[error.message] ?? 0) + 1;
        }
      }
    }),
  );
  return { members: members.length, joined, refused, unanswered, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------------------------
// reporting and closing

/** Open sockets, in all and in the room, by instance. */
function census() {
  const open = {};
  const members = {};
  for (const client of clients) {
    if (client.socket.readyState === WebSocket.OPEN) {
      open[client.target] = (open[client.target] ?? 0) + 1;
      if (client.member) {
        members[client.target] = (members[client.target] ?? 0) + 1;
      }
    }
  }
  return { open, members };
}

function status({ keys = [] } = {}) {
  const { open, members } = census();
  return {
    clients: clients.length,
    open,
    members,
    drops,
    dropCodes,
    pings,
    otherFrames,
    receipts: Object.fromEntries(keys.map((key) => [key, receipts.get(key) ?? null])),
    maxLagMs: Math.round(maxLagMs),
    stalls,
    heapUsed: process.memoryUsage().heapUsed,
  };
}

/**
 * Closes every socket with a reset (no FIN, so no TIME_WAIT holding this address's client port
 * for a minute), and forgets every figure.
 */
function close() {
  for (const client of clients) {
    client.closed = true; // its close event comes later: not a drop
    client.socket.removeAllListeners('message');
    const raw = client.socket._socket;
    if (raw && typeof raw.resetAndDestroy === 'function' && !raw.destroyed) {
      raw.resetAndDestroy();
    } else {
      client.socket.terminate();
    }
  }
  clients = [];
  drops = 0;
  pings = 0;
  dropCodes = {};
  otherFrames = {};
  receipts = new Map();
  maxLagMs = 0;
  stalls = 0;
}

process.on('message', async ({ id, cmd, args }) => {
  let result = null;
  if (cmd === 'connect') {
    result = await connect(args);
  } else if (cmd === 'join') {
    result = await join(args);
  } else if (cmd === 'status') {
    result = status(args);
  } else if (cmd === 'resetLag') {
    maxLagMs = 0;
    stalls = 0;
  } else if (cmd === 'close') {
    close();
  }
  process.send({ id, result });
});
// The benchmark gone (Ctrl-C, a crash): this worker goes too, and its sockets with it.
process.on('disconnect', () => process.exit(0));
