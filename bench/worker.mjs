// A load-driver process: opens and holds a share of the benchmark's clients from its own loopback
// source address, and measures what they see. Driven over IPC by bench/run.mjs.
import { Buffer } from 'node:buffer';
import { Agent, request } from 'node:http';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

const localAddress = process.env.LOCAL_ADDRESS ?? '127.0.0.1';
const secret = new TextEncoder().encode(process.env.JWT_SECRET ?? '');
const agent = new Agent({ keepAlive: true, maxSockets: 64, localAddress });
/**
 * storm and overload: thousands of independent clients, each with its own connection in reality;
 * a wider pool so that the driver's own queue is not the bottleneck (still bounded per worker).
 */
const stormAgent = new Agent({ keepAlive: true, maxSockets: 512, localAddress });

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
// storm: clients of an instance that drains come back to another one, with the token they hold,
// following the server's hints as the SDK (libs/client) does

/**
 * The worker's own event-loop lag, sampled every 50 ms: a client timeout that fired while this
 * process was stalled (its timer late, or the loop blocked during the attempt) is the driver's
 * fault, not the server's, and is counted apart.
 */
const LAG_SAMPLE_MS = 50;
/** A stall: the loop at least this late. */
const STALL_MS = 500;
/** [at, lagMs] of every sample late by STALL_MS or more (bounded). */
let stalls = [];
let maxLagMs = 0;
let lastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  const lag = now - lastTick - LAG_SAMPLE_MS;
  lastTick = now;
  maxLagMs = Math.max(maxLagMs, lag);
  if (lag >= STALL_MS && stalls.length < 10000) {
    stalls.push([now, lag]);
  }
}, LAG_SAMPLE_MS).unref();

/** Whether the loop stalled (≥ STALL_MS) between `from` and `to` (performance.now() times). */
const stalledBetween = (from, to) => stalls.some(([at, lag]) => at >= from && at - lag <= to);

/** An error carrying the server's hint, in ms, when it gave one (503 body, Retry-After, 1001). */
function refused(message, hintMs = null) {
  const error = new Error(message);
  error.hintMs = hintMs;
  return error;
}

/** The hint of a 503: `retryAfterMs` from the JSON body, else `Retry-After` (seconds). */
function hintOf(res, text) {
  try {
    const body = JSON.parse(text);
    if (Number.isFinite(body.retryAfterMs)) {
      return body.retryAfterMs;
    }
  } catch {
    // not JSON: the header then
  }
  const header = Number(res.headers['retry-after']);
  return Number.isFinite(header) ? header * 1000 : null;
}

/** The 1001's `reconnect in N ms`, or null. */
function reconnectHint(reason) {
  const match = /reconnect in (\d+) ?ms/.exec(reason);
  return match ? Number(match[1]) : null;
}

/**
 * A ticket for `token`: resolves { url, fetchedAt, expiresAt }; a refusal rejects with its status (and the
 * hint of a 503). `signal` aborts it (an impatient client giving up).
 */
function stormTicket(httpBase, token, signal) {
  return new Promise((resolve, reject) => {
    const req = request(
      `${httpBase}/auth/ws-ticket`,
      { method: 'POST', agent: stormAgent, signal, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode === 201) {
            const body = JSON.parse(text);
            resolve({
              url: body.url,
              fetchedAt: performance.now(),
              expiresAt: performance.now() + (Number(body.expiresIn) || 30) * 1000,
            });
          } else if (res.statusCode === 503) {
            reject(refused('ticket 503', hintOf(res, text)));
          } else {
            reject(refused(`ticket ${res.statusCode}`));
          }
        });
        res.on('error', () => reject(refused('ticket aborted')));
      },
    );
    req.on('error', (error) =>
      reject(refused(error.name === 'AbortError' ? 'ticket aborted' : `ticket ${error.code}`)),
    );
    req.end();
  });
}

/**
 * Opens a socket and resolves at its welcome; rejects with `upgrade 503` (and its hint), the
 * upgrade's other status, or the close code. `signal` aborts it.
 */
function stormSocket(url, signal, timeoutMs = 0) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false });
    let done = false;
    const finish = (error) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        if (error) {
          reject(error);
        } else {
          resolve(socket);
        }
      }
    };
    const abort = () => {
      socket.terminate();
      finish(refused('upgrade aborted'));
    };
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            socket.terminate();
            finish(refused('timeout'));
          }, timeoutMs)
        : null;
    signal?.addEventListener('abort', abort);
    // "socket hang up" (the server closed before answering) and "read ECONNRESET" (a reset) share
    // their code: the message tells them apart.
    socket.on('error', (error) =>
      finish(refused(`socket ${error.code ?? ''} (${error.message})`.replace(' ()', ''))),
    );
    socket.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        socket.terminate();
        finish(
          res.statusCode === 503
            ? refused('upgrade 503', hintOf(res, text))
            : refused(`upgrade ${res.statusCode}`),
        );
      });
    });
    socket.once('close', (code, reason) =>
      finish(refused(`close ${code}`, code === 1001 ? reconnectHint(String(reason)) : null)),
    );
    socket.once('message', () => finish(null)); // the first frame is the welcome
  });
}

/** @type {WebSocket[]} */
let stormSockets = [];
let storm = null;
const newStorm = () => ({
  back: 0,
  failed: 0,
  firstBackAt: 0,
  lastBackAt: 0,
  backTimes: [],
  refusals: {},
  timeouts: 0,
  stallTimeouts: 0,
  ticketReused: 0,
  attempts: 0,
});

/** The SDK's backoff: full jitter, random × min(30 s, 1 s × 2^n), widened on every retry. */
class Backoff {
  attempt = 0;
  next() {
    const ceiling = Math.min(30000, 1000 * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.floor(Math.random() * ceiling);
  }
}

/** The SDK's delay: the backoff, or the hint plus up to a tenth of it (≤ 1 s) when longer. */
/** As the SDK: the server's hint plus a little jitter, else the next backoff (which widens). */
function retryDelay(backoff, hintMs) {
  return hintMs !== null && hintMs !== undefined
    ? hintMs + Math.floor(Math.random() * Math.min(1000, hintMs / 10))
    : backoff.next();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client coming back to `httpBase` after its socket closed (`hintMs`: the 1001's `reconnect in`),
 * as the SDK does: on a 503 (ticket or upgrade) wait its `retryAfterMs`, else `Retry-After`; after
 * an upgrade 503, the same ticket again while it is valid; otherwise full-jitter backoff capped at
 * 30 s. `attemptTimeoutMs` > 0: an impatient client abandons an attempt (ticket + upgrade +
 * welcome) after that long and tries again. Gives up only at `deadline` (the scenario's bound).
 */
async function comeBack(httpBase, token, hintMs, { attemptTimeoutMs, deadline }) {
  const backoff = new Backoff();
  let delayMs = retryDelay(backoff, hintMs);
  let ticket = null;
  while (performance.now() + delayMs < deadline) {
    await sleep(delayMs);
    storm.attempts += 1;
    const controller = new AbortController();
    const begin = performance.now();
    let timedOut = false;
    let upgradeBegin = begin;
    const timer =
      attemptTimeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, attemptTimeoutMs)
        : null;
    try {
      if (ticket === null || ticket.expiresAt - performance.now() < 1000) {
        ticket = await stormTicket(httpBase, token, controller.signal);
      } else {
        storm.ticketReused += 1;
      }
      upgradeBegin = performance.now();
      const socket = await stormSocket(ticket.url, controller.signal);
      clearTimeout(timer);
      stormSockets.push(socket);
      socket.on('error', () => undefined);
      const now = performance.timeOrigin + performance.now();
      storm.back += 1;
      storm.firstBackAt = storm.firstBackAt || now;
      storm.lastBackAt = now;
      storm.backTimes.push(now);
      return;
    } catch (error) {
      clearTimeout(timer);
      let reason = error.message;
      if (timedOut) {
        // Abandoned: was this worker stalled meanwhile (its own loop, not the server)?
        const fired = performance.now();
        if (fired - begin > attemptTimeoutMs + STALL_MS || stalledBetween(begin, fired)) {
          storm.stallTimeouts += 1;
          reason = 'timeout (worker stalled)';
        } else {
          storm.timeouts += 1;
          reason = 'timeout';
        }
      } else if (
        reason === 'close 4001' &&
        ticket !== null &&
        stalledBetween(ticket.fetchedAt, performance.now())
      ) {
        // Expired by the server's clock: this worker read the ticket late, or held it across a
        // stall, so it took the ticket for valid longer than it was.
        reason = `${reason} (ticket held across a worker stall)`;
      } else if (
        reason.includes('socket hang up') &&
        stalledBetween(upgradeBegin, performance.now())
      ) {
        // The server closed a connection that had sent nothing yet: this worker, stalled, had not
        // written its upgrade request within the server's HANDSHAKE_TIMEOUT_MS.
        reason = `${reason} during a worker stall`;
      }
      storm.refusals[reason] = (storm.refusals[reason] ?? 0) + 1;
      if (error.message !== 'upgrade 503') {
        ticket = null; // redeemed, refused or unknown: the next attempt fetches a new one
      }
      delayMs = retryDelay(backoff, timedOut ? null : error.hintMs);
    }
  }
  storm.failed += 1;
}

/** Connects `count` clients to `http`; each one comes back to `fallback` when its socket closes. */
async function stormConnect({ http, fallback, count, first, prefix, concurrency }) {
  storm = newStorm();
  stalls = [];
  maxLagMs = 0;
  stormOptions = null;
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
          const { url } = await stormTicket(http, token);
          const socket = await stormSocket(url, undefined, 20000);
          stormSockets.push(socket);
          socket.on('error', () => undefined);
          socket.once('close', (code, reason) => {
            const hint = code === 1001 ? reconnectHint(String(reason)) : null;
            pendingBack.push(() => comeBack(fallback, token, hint, stormOptions));
            startPending();
          });
        } catch {
          failed += 1;
        }
      }
    }),
  );
  return { failed };
}

/** How the clients come back (`stormArm` sets it before the drain). */
let stormOptions = null;
/** Closes that came before the options (none should): started when they arrive. */
let pendingBack = [];
function startPending() {
  if (stormOptions !== null) {
    pendingBack.forEach((start) => void start());
    pendingBack = [];
  }
}

// ---------------------------------------------------------------------------------------------
// overload: open-loop arrivals at a fixed rate; each fetches a ticket, connects, closes at the
// welcome

async function overload({ http, rate, durationMs, prefix, maxInFlight, timeoutMs }) {
  const result = { offered: 0, ok: 0, refused: {}, failed: {}, skipped: 0, timeouts: 0 };
  let inFlight = 0;
  let seq = 0;
  const count = (bucket, key) => (bucket[key] = (bucket[key] ?? 0) + 1);
  const one = async () => {
    const user = `${prefix}${seq++}`;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const token = await new SignJWT({ sub: user, name: user, sid: user })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime('1h')
        .sign(secret);
      const { url } = await stormTicket(http, token, controller.signal);
      const socket = await stormSocket(url, controller.signal);
      socket.on('error', () => undefined);
      socket.close();
      result.ok += 1;
    } catch (error) {
      if (timedOut) {
        result.timeouts += 1;
      } else if (/ 503$/.test(error.message)) {
        count(result.refused, error.message);
      } else {
        count(result.failed, error.message);
      }
    } finally {
      clearTimeout(timer);
      inFlight -= 1;
    }
  };
  const started = performance.now();
  const tickMs = 10;
  await new Promise((resolve) => {
    const interval = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(rate * (durationMs / 1000), Math.floor((rate * elapsed) / 1000));
      while (result.offered + result.skipped < due) {
        if (inFlight >= maxInFlight) {
          result.skipped += 1; // bounded: an arrival past maxInFlight is not sent
          continue;
        }
        result.offered += 1;
        inFlight += 1;
        void one();
      }
      if (elapsed >= durationMs) {
        clearInterval(interval);
        resolve();
      }
    }, tickMs);
  });
  const deadline = performance.now() + timeoutMs + 1000;
  while (inFlight > 0 && performance.now() < deadline) {
    await sleep(50);
  }
  return { ...result, maxLagMs: Math.round(maxLagMs) };
}

// ---------------------------------------------------------------------------------------------
// bigroom: thousands of members join one room; each member keeps the room's count from
// `room.joined` and the presence frames after it, and records when every presence frame of the
// room was sent (its `ts`, the server's clock) and received

const BIG_ROOM = 'big';
const BIG_ROOM_FIELD = Buffer.from(`"room":"${BIG_ROOM}"`);
const FRAME = (type) => Buffer.from(`{"type":"${type}"`);
const PRESENCE_DIFF = FRAME('presence.diff');
const PRESENCE_COUNT = FRAME('presence.count');
const PRESENCE_JOINED = FRAME('presence.joined');
const PRESENCE_LEFT = FRAME('presence.left');
const ROOM_MESSAGE = FRAME('room.message');
const startsWith = (raw, prefix) =>
  raw.length >= prefix.length && raw.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

/** The unsigned integer after the last `key` in `raw` (`"count":`, `"ts":`), or NaN. */
function numberAfter(raw, key) {
  const at = raw.lastIndexOf(key);
  if (at < 0) {
    return NaN;
  }
  let value = NaN;
  for (let i = at + key.length; i < raw.length && raw[i] >= 48 && raw[i] <= 57; i++) {
    value = (Number.isNaN(value) ? 0 : value * 10) + raw[i] - 48;
  }
  return value;
}

/**
 * @typedef {{ socket: WebSocket, user: string, g: number, count: number | null, joinedAt: number,
 *   presence: number, presenceBytes: number, frames: number, sent: number[], received: number[],
 *   messageAt: number, joins: Map<string, { dueAt: number, sentAt: number, answeredAt: number, doneAt: number,
 *   failed: boolean, code?: string }> }} BigMember
 * @type {{ members: BigMember[], extras: BigMember[] }}
 */
let bigGroups = { members: [], extras: [] };
const nowMs = () => performance.timeOrigin + performance.now();
/** Joins answered (`room.joined` or an error) since the last `bigJoin` began. */
let bigAnswered = 0;

/** Lag samples of this worker's loop of at least 20 ms ([at, lag], epoch ms), for bigroom. */
let bigLags = [];
let bigLastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  const lag = now - bigLastTick - LAG_SAMPLE_MS;
  bigLastTick = now;
  if (lag >= 20 && bigLags.length < 100000) {
    bigLags.push([performance.timeOrigin + now, lag]);
  }
}, LAG_SAMPLE_MS).unref();

function onBigFrame(member, raw) {
  member.frames += 1;
  if (startsWith(raw, PRESENCE_DIFF) || startsWith(raw, PRESENCE_COUNT)) {
    if (raw.indexOf(BIG_ROOM_FIELD) >= 0) {
      bigPresence(member, raw, () => numberAfter(raw, '"count":'));
    }
  } else if (startsWith(raw, PRESENCE_JOINED) || startsWith(raw, PRESENCE_LEFT)) {
    // Today's build: one notice per join or leave, without the count.
    if (raw.indexOf(BIG_ROOM_FIELD) >= 0) {
      const step = startsWith(raw, PRESENCE_JOINED) ? 1 : -1;
      bigPresence(member, raw, (count) => count + step);
    }
  } else if (startsWith(raw, ROOM_MESSAGE)) {
    if (raw.indexOf(BIG_ROOM_FIELD) >= 0 && member.messageAt === 0) {
      member.messageAt = nowMs();
    }
  } else if (raw.indexOf('"type":"room.joined"') >= 0 || raw.indexOf('"type":"error"') >= 0) {
    const message = JSON.parse(raw.toString());
    const join = typeof message.id === 'string' ? member.joins.get(message.id.slice(2)) : null;
    if (join && join.doneAt === 0) {
      join.doneAt = nowMs();
      join.answeredAt = message.ts; // the server's clock, when it wrote the answer
      join.failed = message.type === 'error';
      join.code = message.data?.code;
      bigAnswered += 1;
      if (message.type === 'room.joined' && message.data.room === BIG_ROOM) {
        member.count = message.data.count;
        member.joinedAt = join.doneAt;
      }
    }
  }
}

/** A presence frame of the big room: recorded; it sets the count once `room.joined` came. */
function bigPresence(member, raw, next) {
  member.presence += 1;
  member.presenceBytes += raw.length;
  member.sent.push(numberAfter(raw, '"ts":'));
  member.received.push(nowMs());
  if (member.joinedAt > 0) {
    member.count = next(member.count);
  }
}

/**
 * Connects this worker's share of a group: `count` members, global indexes `worker`,
 * `worker + workers`, … (so that consecutive indexes alternate between workers and instances).
 */
async function bigConnect({ http, group, count, worker, workers, prefix, concurrency }) {
  let next = 0;
  let failed = 0;
  const retries = {};
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const g = next++ * workers + worker;
        const member = {
          socket: null,
          user: `${prefix}${g}`,
          g,
          count: null,
          joinedAt: 0,
          presence: 0,
          presenceBytes: 0,
          frames: 0,
          sent: [],
          received: [],
          messageAt: 0,
          joins: new Map(),
        };
        // As the SDK would: a refused or failed attempt is tried again, a few times.
        for (let attempt = 1; member.socket === null; attempt++) {
          try {
            member.socket = await stormSocket(await ticket(http, member.user), undefined, 20000);
            member.socket.on('error', () => undefined);
            member.socket.on('message', (raw) => onBigFrame(member, raw));
            bigGroups[group].push(member);
          } catch (error) {
            retries[error.message] = (retries[error.message] ?? 0) + 1;
            if (attempt === 5) {
              failed += 1;
              break;
            }
            await sleep(error.hintMs ?? 250 * 2 ** attempt);
          }
        }
      }
    }),
  );
  bigGroups[group].sort((x, y) => x.g - y.g);
  return { failed, retries };
}

/**
 * The group's members with a global index below `limit` send `room.join` at `startAt` (epoch ms)
 * + index × `intervalMs`, into `room`, or with `rooms` into `<room>-<index % rooms>`. Resolves
 * when every join is answered, or `timeoutMs` after the last was due.
 */
async function bigJoin({ group, room, rooms, limit, startAt, intervalMs, timeoutMs }) {
  const members = bigGroups[group].filter((member) => member.g < limit);
  const roomOf = (member) => (rooms > 0 ? `${room}-${member.g % rooms}` : room);
  const deadline = startAt + (members.at(-1)?.g ?? 0) * intervalMs + timeoutMs;
  let sent = 0;
  bigAnswered = 0;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const now = nowMs();
      while (sent < members.length && startAt + members[sent].g * intervalMs <= now) {
        const member = members[sent++];
        const name = roomOf(member);
        const dueAt = startAt + member.g * intervalMs;
        member.joins.set(name, { dueAt, sentAt: nowMs(), answeredAt: 0, doneAt: 0, failed: false });
        if (member.socket.readyState === WebSocket.OPEN) {
          member.socket.send(
            JSON.stringify({ type: 'room.join', id: `j:${name}`, data: { room: name } }),
          );
        }
      }
      if ((sent === members.length && bigAnswered >= members.length) || now > deadline) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  const joins = members.map((member) => member.joins.get(roomOf(member)));
  const answered = joins.filter((join) => join.doneAt > 0);
  return {
    joined: answered.filter((join) => !join.failed).length,
    refused: answered.filter((join) => join.failed).length,
    refusals: answered.reduce((codes, join) => {
      if (join.failed) {
        addTo(codes, join.code);
      }
      return codes;
    }, {}),
    unanswered: joins.length - answered.length,
    firstSentAt: joins.reduce((first, join) => Math.min(first, join.sentAt), Infinity),
    lastDoneAt: answered.reduce((last, join) => Math.max(last, join.doneAt), 0),
    lastAnsweredAt: answered.reduce((last, join) => Math.max(last, join.answeredAt), 0),
    lastSentAt: joins.reduce((last, join) => Math.max(last, join.sentAt), 0),
    maxLateMs: joins.reduce((late, join) => Math.max(late, join.sentAt - join.dueAt), 0),
    latencies: answered.map((join) => join.doneAt - join.sentAt),
    serverLatencies: answered.map((join) => join.answeredAt - join.sentAt),
  };
}

/** The largest number of `times` (sorted) within any window of `windowMs`. */
function densest(times, windowMs) {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] >= windowMs) {
      j += 1;
    }
    best = Math.max(best, i - j + 1);
  }
  return best;
}

const addTo = (histogram, key) => (histogram[key] = (histogram[key] ?? 0) + 1);

/**
 * The group's counts against `expected`, and with `frames`, its presence frames: per member the
 * most in any `windowMs` by the server's send time (`ts`) and by the receive time (which this
 * worker's own stalls bunch up), the most in any second, the closest two, and the totals.
 */
function bigCheck({ group, expected, windowMs, frames }) {
  const members = bigGroups[group];
  const result = {
    members: members.length,
    right: 0,
    unknown: 0,
    wrong: {},
    sentPerWindow: {},
    receivedPerWindow: {},
    sentPerSecond: {},
    closestGap: {},
    moreThanBatches: 0,
    presence: [],
    presenceBytes: 0,
    frames: 0,
    maxLagMs: Math.round(bigLags.reduce((max, [, lag]) => Math.max(max, lag), 0)),
  };
  for (const member of members) {
    if (member.count === null) {
      result.unknown += 1;
    } else if (member.count === expected) {
      result.right += 1;
    } else {
      addTo(result.wrong, member.count - expected);
    }
    if (!frames) {
      continue;
    }
    const sent = Float64Array.from(member.sent).sort();
    const received = Float64Array.from(member.received).sort();
    addTo(result.sentPerWindow, densest(sent, windowMs));
    addTo(result.sentPerSecond, densest(sent, 1000));
    let gap = Infinity;
    for (let i = 1; i < sent.length; i++) {
      gap = Math.min(gap, sent[i] - sent[i - 1]);
    }
    // The closest two frames came (server ts), in buckets: < 10, < 125, < 200, < 240, < 250 ms.
    addTo(result.closestGap, [10, 125, 200, 240, 250].find((limit) => gap < limit) ?? '≥ 250');
    // More frames than batches between the first and the last (a batch's frame may be late by
    // less than half a batch: its `ts` is taken after the store's answer)?
    if (sent.length > Math.round((sent.at(-1) - sent[0]) / windowMs) + 1) {
      result.moreThanBatches += 1;
    }
    addTo(result.receivedPerWindow, densest(received, windowMs));
    result.presence.push(member.presence);
    result.presenceBytes += member.presenceBytes;
    result.frames += member.frames;
  }
  return result;
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
  } else if (cmd === 'stormArm') {
    stormOptions = { ...args, deadline: performance.now() + args.boundMs };
    startPending();
  } else if (cmd === 'stormStatus') {
    const { backTimes, ...rest } = storm;
    result = { ...rest, backTimes: args.times ? backTimes : [], maxLagMs: Math.round(maxLagMs) };
  } else if (cmd === 'overload') {
    maxLagMs = 0;
    result = await overload(args);
  } else if (cmd === 'bigConnect') {
    result = await bigConnect(args);
  } else if (cmd === 'bigJoin') {
    result = await bigJoin(args);
  } else if (cmd === 'bigCheck') {
    result = bigCheck(args);
  } else if (cmd === 'bigMessage') {
    bigGroups.members.forEach((member) => (member.messageAt = 0));
    const sender = bigGroups.members.find((member) => member.g === args.from);
    sender?.socket.send(
      JSON.stringify({ type: 'room.message', data: { room: BIG_ROOM, text: args.text } }),
    );
    result = { sent: sender !== undefined };
  } else if (cmd === 'bigDelivered') {
    const at = bigGroups.members.filter((m) => m.messageAt > 0).map((m) => m.messageAt);
    result = { delivered: at.length, lastAt: Math.max(0, ...at) };
  } else if (cmd === 'bigClose') {
    for (const member of [...bigGroups.members, ...bigGroups.extras]) {
      member.socket.removeAllListeners('message');
      member.socket.terminate();
    }
    bigGroups = { members: [], extras: [] };
    bigLags = [];
  } else if (cmd === 'stormClose') {
    stormSockets.forEach((socket) => {
      socket.removeAllListeners('close');
      socket.terminate();
    });
    stormSockets = [];
    storm = newStorm();
    stormOptions = null;
    pendingBack = [];
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
