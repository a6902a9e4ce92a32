import {
  type ClientMessage,
  ClientMessageType,
  closeAction,
  CloseCode,
  retryAfterSeconds,
  type ServerMessage,
  ServerMessageType,
  type StreamPosition,
  type TicketResponse,
  type WelcomeData,
} from '@switchboard/protocol';
import { Backoff } from './backoff';
import { describeClose } from './close-messages';
import type { Link, LinkHandler } from './link';
import { reconnectInMs, responseHintMs, TICKET_MARGIN_MS } from './retry-hints';
import { SseTransport } from './transports/sse.transport';
import type { Transport, TransportName } from './transports/transport';
import { WebSocketTransport } from './transports/websocket.transport';
import type { ClientOptions, ConnectionState, ReconnectingInfo, WebSocketFactory } from './types';

/** 4001 closes in a row after which the client stops: the tickets are refused for a reason. */
const MAX_TICKET_FAILURES = 3;
const DEFAULT_PONG_TIMEOUT_MS = 10_000;
/** How long a connection must stay open before the backoff starts over. */
const DEFAULT_RESET_AFTER_MS = 10_000;
/** The most jitter added on top of a server's retry hint (at most a tenth of the hint). */
const HINT_JITTER_MS = 1_000;
/** Back `online`, the next attempt comes within this long (jittered: a whole office comes back). */
const ONLINE_JITTER_MS = 1_000;
/** The close code this client uses when it abandons a dead link. */
const DEAD_LINK = 4000;
/** Attempts in a row that broke before the welcome after which the next transport is tried. */
export const FALLBACK_AFTER_FAILURES = 2;
/**
 * The same, on a transport this client has been welcomed over: the way passes it, so a break
 * before open is far likelier an instance refusing the upgrade (draining, busy: a browser sees its
 * `503` only as a `1006`) than a proxy, and a deploy must not move every browser to SSE.
 */
export const FALLBACK_AFTER_FAILURES_ONCE_WELCOMED = 5;
/** How long a fallback holds before the first transport (the WebSocket) is tried again. */
export const FALLBACK_HOLD_MS = 5 * 60_000;
/** Where a page remembers its fallback for the tab's session (per server URL). */
const FALLBACK_KEY = 'switchboard:transport:';

/** A ticket while it may still be redeemed: an attempt refused before `open` keeps it unspent. */
interface Ticket {
  ticket: string;
  /** The WebSocket URL, ticket included, as the server wrote it. */
  url: string;
  validUntil: number;
}

/** An attempt the server answered with an HTTP status instead of opening. */
interface Refusal {
  status: number;
  hintMs: number | null;
}

/** The window's `online` event, where there is a window. */
interface OnlineEvents {
  addEventListener?(type: 'online', listener: () => void): void;
  removeEventListener?(type: 'online', listener: () => void): void;
}

/** `sessionStorage`, where there is one. */
interface SessionStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** What a connection needs from its environment; `SwitchboardClient` checks it once. */
export interface ConnectionEnv {
  WebSocket: WebSocketFactory | undefined;
  fetch: typeof fetch;
}

/**
 * One connection to the server, kept alive: it trades an access token (or, for a cookie session,
 * the browser's cookies) for a ticket, opens a
 * transport (a WebSocket, or Server-Sent Events when the WebSocket cannot open), answers every
 * close code as docs/sdk.md says (reconnect with jittered backoff, new ticket, fresh token, wait,
 * or stop), and detects dead links with application pings. What it carries (rooms, positions,
 * requests) is its handler's: a client, or the hub of a tab that shares it with other tabs.
 */
export class Connection implements Link {
  state: ConnectionState = 'idle';
  transport: TransportName | null = null;
  /** The last `reconnecting` report, while the connection waits to try again. */
  waiting: { info: ReconnectingInfo; failure: string | null } | null = null;

  private readonly transports: TransportName[];
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly base: string;
  private readonly ssePath: string;
  /** Which of `transports` the next attempt uses. */
  private index = 0;
  /** When the client fell back from the first transport, while that holds. */
  private fallbackAt: number | null = null;
  /** Attempts in a row on the current transport that broke before the welcome. */
  private brokenAttempts = 0;
  /** The transports this client has been welcomed over: the way to the server passes them. */
  private readonly welcomedOver = new Set<TransportName>();
  private link: Transport | null = null;
  private linkOpened = false;
  private linkWelcomed = false;
  private refusal: Refusal | null = null;
  private ticket: Ticket | null = null;
  private ticketFailures = 0;
  private wantFreshToken = false;
  private stopped = false;
  private heartbeatMs = 30_000;
  /** Why the last attempt failed, until one succeeds. */
  private lastFailure: string | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  /** Resets the backoff once the connection has stayed open long enough. */
  private stableTimer: ReturnType<typeof setTimeout> | null = null;
  /** Retries since the connection was last stable (the `reconnecting` event's `attempt`). */
  private attempt = 0;
  /** When the pending retry fires (epoch ms), and the earliest a server hint allows one. */
  private retryAt = 0;
  private notBefore = 0;
  private readonly onOnline = (): void => this.online();

  /**
   * @param ownSince where the user's own stream stands, sent as `since` on every attempt
   */
  constructor(
    private readonly options: ClientOptions,
    private readonly env: ConnectionEnv,
    private readonly handler: LinkHandler,
    private readonly ownSince: () => StreamPosition | undefined,
  ) {
    this.transports = usableTransports(options, env);
    this.backoff = new Backoff(options.backoff);
    this.random = options.backoff?.random ?? Math.random;
    this.base = options.url.replace(/\/$/, '');
    this.ssePath = options.ssePath ?? '/sse';
    this.recallFallback();
  }

  /** Starts connecting (and keeps the connection up until `close()` or a stopping close code). */
  connect(): void {
    if (this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting') {
      return;
    }
    this.stopped = false;
    this.ticketFailures = 0;
    this.lastFailure = null;
    this.backoff.reset();
    this.attempt = 0;
    this.notBefore = 0;
    this.ticket = null;
    (globalThis as OnlineEvents).addEventListener?.('online', this.onOnline);
    this.setState('connecting');
    void this.open();
  }

  retryNow(): boolean {
    if (this.reconnectTimer === null || this.stopped) {
      return false;
    }
    this.clearReconnect();
    this.notBefore = 0;
    void this.open();
    return true;
  }

  /** Closes for good with 1000. */
  close(): void {
    this.stop('closed', 'closed by the application');
    this.link?.close(CloseCode.Normal, 'bye');
  }

  send(frame: ClientMessage): void {
    this.link?.send(JSON.stringify(frame));
  }

  /**
   * Starts from `transport` when it comes after the current one in `transports`, as if this client
   * had fallen back to it now: a tab that takes over the connection of a tab that was on SSE.
   */
  fallBackTo(transport: TransportName): void {
    const index = this.transports.indexOf(transport);
    if (index > this.index) {
      this.index = index;
      this.brokenAttempts = 0;
      this.fallbackAt = Date.now();
      this.remember(transport);
    }
  }

  private async open(): Promise<void> {
    const transport = this.currentTransport();
    let ticket: Ticket | null;
    if (this.ticket !== null && Date.now() < this.ticket.validUntil) {
      ticket = this.ticket; // the last attempt was refused before open: its ticket is unspent
    } else {
      this.ticket = null;
      try {
        ticket = await this.fetchTicket();
      } catch (error) {
        // The network or the server failed: retried with backoff, like a dropped socket.
        this.retry(
          'ticket failed',
          `ticket request failed: ${error instanceof Error ? error.message : String(error)}`,
          null,
        );
        return;
      }
    }
    if (ticket === null || this.stopped) {
      return;
    }
    const link =
      transport === 'sse'
        ? new SseTransport(
            this.env.fetch,
            this.withSince(
              `${this.base}${this.ssePath}?ticket=${encodeURIComponent(ticket.ticket)}`,
            ),
            `${this.base}${this.ssePath}/messages`,
          )
        : new WebSocketTransport(this.env.WebSocket!, secureIfPageIs(this.withSince(ticket.url)));
    this.link = link;
    this.linkOpened = false;
    this.linkWelcomed = false;
    this.refusal = null;
    link.listener = {
      open: () => {
        if (link === this.link) {
          this.linkOpened = true;
        }
      },
      message: (text) => this.receive(link, text),
      refused: (status, hintMs) => {
        if (link === this.link) {
          this.refusal = { status, hintMs };
        }
      },
      close: (code, reason) => this.closed(link, code, reason),
    };
  }

  /** Not a secret: where the client stands in its own stream, to get what it missed. */
  private withSince(url: string): string {
    const own = this.ownSince();
    return own?.epoch ? `${url}&since=${encodeURIComponent(`${own.epoch}:${own.offset}`)}` : url;
  }

  /** A ticket, or null when the client has stopped or scheduled a retry itself. */
  private async fetchTicket(): Promise<Ticket | null> {
    const cookieSession = this.options.getAccessToken === undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await this.env.fetch(
        `${this.base}/auth/ws-ticket`,
        await this.ticketRequest(),
      );
      if (response.status === 201) {
        const { ticket, url, expiresIn } = (await response.json()) as TicketResponse;
        this.ticket = {
          ticket,
          url,
          validUntil: Date.now() + expiresIn * 1000 - TICKET_MARGIN_MS,
        };
        return this.ticket;
      }
      if (response.status === 401 && attempt === 0 && !cookieSession) {
        this.wantFreshToken = true;
        continue;
      }
      if (response.status === 401) {
        // A cookie session has no fresh token to ask for: the browser is not signed in.
        this.stop(
          'signed-out',
          cookieSession
            ? `not signed in: ${await refusalMessage(response)}`
            : 'the access token was refused',
        );
        return null;
      }
      if (response.status === 403) {
        // Retrying cannot help (the page's origin is not allowed): stop, and say why.
        this.stop('closed', await refusalMessage(response));
        return null;
      }
      const hintMs = await responseHintMs(response);
      this.retry(
        `ticket ${response.status}`,
        hintMs === null
          ? `ticket request refused (${response.status})`
          : `ticket request refused (${response.status}, retry after ${Math.ceil(hintMs / 1000)} s)`,
        hintMs,
      );
      return null;
    }
    return null;
  }

  /**
   * The ticket request: the access token as a Bearer, or for a cookie session the browser's
   * cookies (`credentials: 'include'`, so that a page of another origin sends them too and takes
   * the renewed guest cookie the answer may set).
   */
  private async ticketRequest(): Promise<RequestInit> {
    if (this.options.getAccessToken === undefined) {
      return { method: 'POST', credentials: 'include' };
    }
    const token = await this.options.getAccessToken({ refresh: this.wantFreshToken });
    this.wantFreshToken = false;
    return { method: 'POST', headers: { authorization: `Bearer ${token}` } };
  }

  private receive(link: Transport, text: string): void {
    if (link !== this.link) {
      return;
    }
    let message: ServerMessage;
    try {
      message = JSON.parse(text) as ServerMessage;
    } catch {
      return; // The server only sends JSON; anything else is not ours to interpret.
    }
    if (message.type === ServerMessageType.Welcome) {
      const welcome = message.data as WelcomeData;
      this.heartbeatMs = welcome.heartbeatMs;
      this.linkWelcomed = true;
      this.welcomedOver.add(link.name);
      this.brokenAttempts = 0;
      this.ticketFailures = 0;
      this.ticket = null;
      this.lastFailure = null;
      this.waiting = null;
      this.startStableTimer();
      this.startPinging();
      this.setState('open');
      this.setTransport(link.name);
    } else if (message.type === ServerMessageType.Pong && this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    this.handler.frame(message, text);
  }

  private closed(link: Transport, code: number, reason: string): void {
    if (link !== this.link) {
      return;
    }
    const failure = describeClose(code, reason, this.state === 'open');
    // A browser sees an upgrade refused with an HTTP status (503: draining, overloaded) only as a
    // 1006 before open; such a refusal leaves the ticket unspent, so the next attempt reuses it.
    const upgradeFailed = code === CloseCode.Abnormal && !this.linkOpened;
    const broke = code === CloseCode.Abnormal && !this.linkWelcomed;
    const refusal = this.refusal;
    this.refusal = null;
    if (!upgradeFailed) {
      this.ticket = null;
    }
    this.link = null;
    this.clearStableTimer();
    this.stopPinging();
    this.setTransport(null);
    this.handler.closed({ code, reason, failure });
    if (this.stopped) {
      return;
    }
    // A WebSocket that breaks before its welcome, again and again, while the ticket route answers:
    // something on the way (a proxy) does not pass it. The next transport goes at once.
    if (broke && refusal === null && this.fallBack()) {
      this.scheduleReconnect(0, failure, `${link.name} failed, trying ${this.currentTransport()}`);
      return;
    }
    const what = link.name === 'sse' ? 'stream' : 'upgrade';
    const action = closeAction(code);
    switch (action) {
      case 'none':
        this.stop('closed', `closed by the server: ${reason || code}`, code);
        return;
      case 'reconnect':
        if (refusal !== null) {
          this.retry(
            `${what} ${refusal.status}`,
            refusal.hintMs === null
              ? `connection refused: ${what} refused (${refusal.status})`
              : `connection refused: ${what} refused (${refusal.status}, retry after ${Math.ceil(refusal.hintMs / 1000)} s)`,
            refusal.hintMs,
          );
        } else if (upgradeFailed) {
          this.retry(`${what} failed`, failure, null);
        } else {
          this.retry(closeReason(code, reason), failure, reconnectInMs(reason));
        }
        return;
      case 'new-ticket':
        this.ticketFailures += 1;
        if (this.ticketFailures >= MAX_TICKET_FAILURES) {
          this.stop('closed', `tickets refused ${MAX_TICKET_FAILURES} times in a row (4001)`, code);
        } else {
          this.retry(closeReason(code, reason), failure, null);
        }
        return;
      case 'refresh-token':
        this.wantFreshToken = true;
        this.scheduleReconnect(0, failure, closeReason(code, reason));
        return;
      case 'signed-out':
        this.stop('signed-out', reason || 'session revoked', code);
        return;
      case 'replaced':
        this.stop('replaced', reason || 'replaced by a newer connection', code);
        return;
      case 'wait': {
        const seconds = retryAfterSeconds(reason);
        this.retry(closeReason(code, reason), failure, seconds === null ? null : seconds * 1000);
        return;
      }
      default: {
        const unreachable: never = action;
        throw new Error(`unknown close action ${String(unreachable)}`);
      }
    }
  }

  /** The transport of the next attempt: back to the first once a fallback has held long enough. */
  private currentTransport(): TransportName {
    if (this.fallbackAt !== null && Date.now() - this.fallbackAt >= FALLBACK_HOLD_MS) {
      this.index = 0;
      this.fallbackAt = null;
      this.brokenAttempts = 0;
      this.remember(null);
    }
    return this.transports[this.index];
  }

  /** Counts an attempt that broke before its welcome; true when the next transport takes over. */
  private fallBack(): boolean {
    this.brokenAttempts += 1;
    const needed = this.welcomedOver.has(this.transports[this.index])
      ? FALLBACK_AFTER_FAILURES_ONCE_WELCOMED
      : FALLBACK_AFTER_FAILURES;
    if (this.brokenAttempts < needed || this.index + 1 >= this.transports.length) {
      return false;
    }
    this.index += 1;
    this.brokenAttempts = 0;
    this.fallbackAt = Date.now();
    this.remember(this.transports[this.index]);
    return true;
  }

  /** Takes up the fallback this page made earlier in the tab's session, while it holds. */
  private recallFallback(): void {
    const saved = this.storage((storage) => storage.getItem(FALLBACK_KEY + this.base));
    if (typeof saved !== 'string') {
      return;
    }
    const { transport, at } = parseFallback(saved);
    const index = transport === undefined ? -1 : this.transports.indexOf(transport);
    if (index > 0 && at !== undefined && Date.now() - at < FALLBACK_HOLD_MS) {
      this.index = index;
      this.fallbackAt = at;
    }
  }

  private remember(transport: TransportName | null): void {
    this.storage((storage) =>
      transport === null
        ? storage.removeItem(FALLBACK_KEY + this.base)
        : storage.setItem(
            FALLBACK_KEY + this.base,
            JSON.stringify({ transport, at: this.fallbackAt }),
          ),
    );
  }

  /** `sessionStorage` where a page has one and lets it be used; nothing elsewhere. */
  private storage<T>(use: (storage: SessionStorageLike) => T): T | undefined {
    try {
      const storage = (globalThis as { sessionStorage?: SessionStorageLike }).sessionStorage;
      return storage === undefined ? undefined : use(storage);
    } catch {
      // Storage denied (a sandboxed frame, privacy settings): the fallback lasts for this client.
      return undefined;
    }
  }

  /**
   * Tries again after the server's hint (`hintMs`, plus a little jitter) when it gave one, else
   * after the next backoff delay. Every unhinted failure widens the backoff: the sequence (ticket,
   * upgrade, welcome, rejoin) backs off as a whole until a connection stays up. A hint does not
   * widen it: the server sized it to its backlog, and a client whose window had widened on hinted
   * refusals sat out up to 30 s after the server had room again (the storm's tail, measured in
   * docs/BENCHMARKS.md).
   */
  private retry(reason: string, failure: string, hintMs: number | null): void {
    this.notBefore = hintMs === null ? 0 : Date.now() + hintMs;
    const delayMs =
      hintMs === null
        ? this.backoff.next()
        : hintMs + Math.floor(this.random() * Math.min(HINT_JITTER_MS, hintMs / 10));
    this.scheduleReconnect(delayMs, failure, reason);
  }

  /** Tries again in `delayMs`; `failure` says why the last attempt failed. */
  private scheduleReconnect(delayMs: number, failure: string, reason: string): void {
    if (this.stopped) {
      return;
    }
    this.lastFailure = failure;
    this.attempt += 1;
    this.setState('reconnecting');
    this.wait(delayMs, reason);
  }

  private wait(delayMs: number, reason: string): void {
    this.retryAt = Date.now() + delayMs;
    this.clearReconnect();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delayMs);
    const info: ReconnectingInfo = { attempt: this.attempt, delayMs, reason };
    this.waiting = { info, failure: this.lastFailure };
    this.handler.reconnecting(info, this.lastFailure);
  }

  /**
   * The browser is back online: the network was the trouble, so waiting out the backoff only
   * delays the user. Tries again soon (jittered), but not before a server's hint allows.
   */
  private online(): void {
    if (this.reconnectTimer === null || this.stopped) {
      return;
    }
    const now = Date.now();
    const delayMs = Math.max(Math.floor(this.random() * ONLINE_JITTER_MS), this.notBefore - now);
    if (now + delayMs < this.retryAt) {
      this.wait(delayMs, 'online');
    }
  }

  private startStableTimer(): void {
    this.clearStableTimer();
    this.stableTimer = setTimeout(() => {
      this.stableTimer = null;
      this.backoff.reset();
      this.attempt = 0;
    }, this.options.backoff?.resetAfterMs ?? DEFAULT_RESET_AFTER_MS);
  }

  private clearStableTimer(): void {
    if (this.stableTimer !== null) {
      clearTimeout(this.stableTimer);
      this.stableTimer = null;
    }
  }

  /** Browsers cannot see ping frames: an application ping that goes unanswered means a dead link. */
  private startPinging(): void {
    this.stopPinging();
    const interval = this.options.pingIntervalMs ?? this.heartbeatMs;
    this.pingTimer = setInterval(() => {
      if (this.link === null || this.pongTimer !== null) {
        return;
      }
      this.link.send(JSON.stringify({ type: ClientMessageType.Ping }));
      this.pongTimer = setTimeout(
        () => this.deadLink(),
        this.options.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS,
      );
    }, interval);
  }

  private stopPinging(): void {
    if (this.pingTimer !== null) {
      clearInterval(this.pingTimer);
      this.pingTimer = null;
    }
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
  }

  /** Abandons a link whose close event might not come for minutes, and reconnects now. */
  private deadLink(): void {
    const link = this.link;
    if (link === null) {
      return;
    }
    this.closed(link, CloseCode.Abnormal, 'ping timeout');
    link.listener = null;
    link.close(DEAD_LINK, 'ping timeout');
  }

  private stop(state: ConnectionState, message: string, code?: number): void {
    this.stopped = true;
    this.waiting = null;
    this.clearReconnect();
    this.clearStableTimer();
    this.stopPinging();
    (globalThis as OnlineEvents).removeEventListener?.('online', this.onOnline);
    this.state = state;
    this.handler.stopped({ state, code, message });
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
  }

  private setState(state: 'connecting' | 'reconnecting' | 'open'): void {
    if (this.state === state) {
      return;
    }
    this.state = state;
    if (state !== 'open') {
      this.handler.state(state); // `open` reaches the handler as the welcome frame
    }
  }

  private setTransport(transport: TransportName | null): void {
    if (this.transport !== transport) {
      this.transport = transport;
      this.handler.transport(transport);
    }
  }
}

/**
 * The transports the options ask for, in order, less those this environment lacks: a WebSocket
 * needs a WebSocket class, SSE only `fetch`. Throws when none is left, or on an unknown name.
 */
export function usableTransports(options: ClientOptions, env: ConnectionEnv): TransportName[] {
  const asked = options.transports ?? ['websocket', 'sse'];
  if (asked.length === 0 || new Set(asked).size !== asked.length) {
    throw new Error(`transports must name each transport once, got ${JSON.stringify(asked)}`);
  }
  for (const name of asked) {
    if (name !== 'websocket' && name !== 'sse') {
      throw new Error(`unknown transport "${String(name)}": use 'websocket' or 'sse'`);
    }
  }
  const usable = asked.filter((name) => name === 'sse' || env.WebSocket !== undefined);
  if (usable.length === 0) {
    throw new Error(
      'SwitchboardClient needs WebSocket and fetch: pass them in options (e.g. WebSocket from "ws")',
    );
  }
  return usable;
}

function parseFallback(saved: string): { transport?: TransportName; at?: number } {
  try {
    const parsed = JSON.parse(saved) as { transport?: unknown; at?: unknown };
    return {
      transport:
        parsed.transport === 'websocket' || parsed.transport === 'sse'
          ? parsed.transport
          : undefined,
      at: typeof parsed.at === 'number' ? parsed.at : undefined,
    };
  } catch {
    return {}; // Not ours, or from an older SDK: start from the first transport.
  }
}

/** A page loaded over https must use wss (browsers block ws:// from such pages). */
function secureIfPageIs(url: string): string {
  const page = (globalThis as { location?: { protocol?: string } }).location;
  return page?.protocol === 'https:' && url.startsWith('ws://')
    ? `wss://${url.slice('ws://'.length)}`
    : url;
}

/** A close as the `reconnecting` event reports it: `1001 reconnect in 4310 ms`, or `1011`. */
function closeReason(code: number, reason: string): string {
  return reason ? `${code} ${reason}` : String(code);
}

/** The `message` of a Nest error body, or the status line. */
async function refusalMessage(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { message?: unknown };
    if (typeof body.message === 'string') {
      return body.message;
    }
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return `the ticket request was refused (${response.status})`;
}
