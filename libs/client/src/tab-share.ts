import { type ClientMessage, CloseCode } from '@switchboard/protocol';
import type { ConnectionEnv } from './connection';
import type { Link, LinkHandler, TabRole, TabStanding } from './link';
import { dispatch, TabHub } from './tab-hub';
import { isTabMessage, type TabCommand, type TabMessage } from './tab-messages';
import type { TransportName } from './transports/transport';
import type {
  BroadcastChannelFactory,
  BroadcastChannelLike,
  ClientOptions,
  LockManagerLike,
} from './types';

/** How long a new leader waits for the other tabs to say where they stand before it connects. */
export const COLLECT_MS = 500;

/** What sharing needs from the page. */
export interface ShareEnv {
  locks: LockManagerLike;
  BroadcastChannel: BroadcastChannelFactory;
}

/** What the tab's client tells the sharing about itself. */
export interface ShareHandler extends LinkHandler {
  role(role: TabRole): void;
  /** Where the tab stands in its streams, for the leader to recover them. */
  standing(): TabStanding;
  /** Whether the tab's client wants a connection now (connecting, open or reconnecting). */
  active(): boolean;
}

/**
 * The lock and channel names of one server URL and user. The user comes from the access token's
 * `sub` (read, not verified: it only keeps two users' tabs apart); a token that is not a JWT
 * shares per URL. A cookie session shares per URL, apart from the token sessions: every tab sends
 * the same cookies, so they are one user's (whoever signs in again in one tab does so for all).
 */
export async function shareName(options: ClientOptions): Promise<string> {
  const url = options.url.replace(/\/$/, '');
  if (options.getAccessToken === undefined) {
    return `switchboard-cookie:${url}`;
  }
  let user = '';
  try {
    user = subject(await options.getAccessToken({ refresh: false }));
  } catch {
    user = ''; // The token is fetched again to connect, and that failure is reported then.
  }
  return `switchboard:${url}:${user}`;
}

function subject(token: string): string {
  const payload = token.split('.')[1];
  if (payload === undefined) {
    return '';
  }
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' ? sub : '';
  } catch {
    return ''; // Not a JWT: tabs share per URL.
  }
}

/**
 * One connection per browser: the tab that holds the `<name>:leader` Web Lock holds the
 * connection (a `TabHub`), and the other tabs reach it through a `BroadcastChannel` of the same
 * name. Each tab also holds `<name>:tab:<id>` for its life, so the leader learns when a tab is gone
 * without it saying so, and a new leader knows which tabs to wait for. When the leader's tab
 * closes, the browser frees its lock and the next tab in the lock's queue takes over: it asks the
 * others where they stand, connects from there, and serves on.
 */
export class TabShare implements Link {
  /** This tab's id in the share, new each time it joins. */
  private id = randomId();
  private role: TabRole = 'alone';
  private running = false;
  private name = '';
  private channel: BroadcastChannelLike | null = null;
  private hub: TabHub | null = null;
  private leaderId: string | null = null;
  /** The generation of the last welcome the leader sent this tab. */
  private generation = 0;
  private abort: AbortController | null = null;
  private releaseTab: (() => void) | null = null;
  private releaseLeader: (() => void) | null = null;
  /** A connect() while the share was still starting. */
  private connectAsked = false;
  /** The transport the leader's connection was last open over, as this follower heard. */
  private lastTransport: TransportName | null = null;

  constructor(
    private readonly options: ClientOptions,
    private readonly env: ConnectionEnv,
    private readonly share: ShareEnv,
    private readonly handler: ShareHandler,
  ) {}

  connect(): void {
    if (!this.running) {
      this.running = true;
      void this.start();
    } else if (this.role === 'leader') {
      this.hub?.command('connect');
    } else if (this.role === 'follower') {
      this.command('connect');
    } else {
      this.connectAsked = true;
    }
  }

  send(frame: ClientMessage): void {
    if (this.role === 'leader') {
      this.hub?.send(this.id, frame);
    } else {
      this.post({ kind: 'send', from: this.id, frame, generation: this.generation });
    }
  }

  retryNow(): boolean {
    if (this.role === 'leader') {
      return this.hub?.connection.retryNow() ?? false;
    }
    this.command('retry-now');
    return this.role === 'follower';
  }

  close(): void {
    this.shutdown();
    this.handler.transport(null);
    this.handler.stopped({ state: 'closed', message: 'closed by the application' });
  }

  /** Leaves the share: the leader resigns (the next tab takes over), a follower says bye. */
  private shutdown(): void {
    if (this.running) {
      this.running = false;
      if (this.role === 'leader') {
        this.hub?.resign();
        this.post({ kind: 'resign', from: this.id });
      } else {
        this.post({ kind: 'bye', from: this.id });
      }
      this.hub = null;
      this.leaderId = null;
      this.abort?.abort();
      this.releaseLeader?.();
      this.releaseTab?.();
      this.channel?.close();
      this.channel = null;
      this.setRole('alone');
    }
  }

  private async start(): Promise<void> {
    this.id = randomId();
    const name = await shareName(this.options);
    if (!this.running) {
      return;
    }
    this.name = name;
    this.abort = new AbortController();
    this.channel = new this.share.BroadcastChannel(name);
    this.channel.onmessage = (event) => this.received(event.data);
    await this.holdTabLock();
    if (!this.running) {
      this.releaseTab?.(); // closed while the lock was being granted
      return;
    }
    const led = await new Promise<boolean>((resolve) => {
      this.share.locks
        .request(`${name}:leader`, { ifAvailable: true }, (lock) => {
          resolve(lock !== null);
          return lock === null ? undefined : this.lead();
        })
        .catch((error: unknown) => this.lockFailed(error));
    });
    if (led || !this.running) {
      return;
    }
    this.follow();
    this.share.locks
      .request(`${name}:leader`, { signal: this.abort.signal }, () => this.lead())
      .catch((error: unknown) => this.lockFailed(error));
  }

  /** Holds this tab's own lock until it closes (the browser frees it when the tab goes). */
  private holdTabLock(): Promise<void> {
    return new Promise<void>((granted) => {
      this.share.locks
        .request(`${this.name}:tab:${this.id}`, {}, () => {
          granted();
          return new Promise<void>((release) => (this.releaseTab = release));
        })
        .catch((error: unknown) => {
          granted();
          this.lockFailed(error);
        });
    });
  }

  private follow(): void {
    this.setRole('follower');
    this.hello();
  }

  private hello(): void {
    this.post({
      kind: 'hello',
      from: this.id,
      standing: this.handler.standing(),
      connect: this.handler.active() || this.connectAsked,
    });
    this.connectAsked = false;
  }

  /** Holds the leader lock (the returned promise) until this tab closes. */
  private lead(): Promise<void> {
    return new Promise<void>((release) => {
      this.releaseLeader = release;
      if (this.running) {
        void this.takeOver();
      } else {
        release();
      }
    });
  }

  private async takeOver(): Promise<void> {
    const following = this.role === 'follower' && this.leaderId !== null;
    this.leaderId = this.id;
    if (following) {
      this.lost();
    }
    const name = this.name;
    const hub = new TabHub(this.options, this.env, {
      local: { id: this.id, handler: this.handler },
      post: (to, event) => this.post({ kind: 'event', from: this.id, to, event }),
      watch: (tab, gone) => {
        this.share.locks
          .request(`${name}:tab:${tab}`, { signal: this.abort?.signal }, () => gone())
          .catch((error: unknown) => this.lockFailed(error));
      },
    });
    this.hub = hub;
    if (this.lastTransport !== null) {
      // Behind a proxy that broke the leader's WebSocket, this tab's would break too.
      hub.connection.fallBackTo(this.lastTransport);
    }
    this.setRole('leader');
    this.post({ kind: 'leader', from: this.id });
    const others = await this.otherTabs();
    const deadline = Date.now() + COLLECT_MS;
    while (this.hub === hub && !hub.hasTabs(others) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (this.hub === hub) {
      hub.start(this.handler.standing(), this.handler.active() || this.connectAsked);
      this.connectAsked = false;
    }
  }

  /** The other tabs of this share that hold their tab lock now (none known without `query`). */
  private async otherTabs(): Promise<string[]> {
    const prefix = `${this.name}:tab:`;
    try {
      const snapshot = (await this.share.locks.query?.()) ?? {};
      return (snapshot.held ?? [])
        .map((lock) => lock.name ?? '')
        .filter((name) => name.startsWith(prefix))
        .map((name) => name.slice(prefix.length))
        .filter((id) => id !== this.id);
    } catch {
      return []; // Without a roster the leader connects at once; late hellos are served then.
    }
  }

  private received(data: unknown): void {
    if (!isTabMessage(data) || data.from === this.id) {
      return;
    }
    if (this.role === 'leader') {
      this.serve(data);
    } else {
      this.followed(data);
    }
  }

  /** The leader's side: followers' hellos, frames, commands and byes. */
  private serve(message: TabMessage): void {
    const hub = this.hub;
    if (hub === null) {
      return;
    }
    switch (message.kind) {
      case 'hello':
        hub.attach(message.from, message.standing, message.connect);
        return;
      case 'send':
        hub.send(message.from, message.frame, message.generation);
        return;
      case 'command':
        hub.command(message.command);
        return;
      case 'bye':
        hub.detach(message.from);
        return;
      case 'leader':
      case 'resign':
      case 'event':
        return; // Only one tab holds the lock: these come from a leader that has just gone.
      default: {
        const unreachable: never = message;
        throw new Error(`unknown tab message ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** A follower's side: who leads, and what the leader says to this tab. */
  private followed(message: TabMessage): void {
    switch (message.kind) {
      case 'leader':
        if (message.from !== this.leaderId) {
          if (this.leaderId !== null) {
            this.lost();
          }
          this.leaderId = message.from;
          this.hello();
        }
        return;
      case 'resign':
        if (message.from === this.leaderId) {
          this.leaderId = null;
          this.lost();
        }
        return;
      case 'event':
        if (!message.to.includes(this.id)) {
          return;
        }
        if (this.leaderId === null) {
          this.leaderId = message.from; // the answer to this tab's first hello
        }
        if (message.from === this.leaderId) {
          if (message.event.type === 'frame' && message.event.generation !== undefined) {
            this.generation = message.event.generation;
          } else if (message.event.type === 'transport' && message.event.transport !== null) {
            this.lastTransport = message.event.transport;
          }
          dispatch(this.handler, message.event);
        }
        return;
      case 'hello':
      case 'send':
      case 'command':
      case 'bye':
        return; // for the leader
      default: {
        const unreachable: never = message;
        throw new Error(`unknown tab message ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** The leading tab is gone: this tab's view of the connection closes until the next one serves. */
  private lost(): void {
    if (!this.handler.active()) {
      return;
    }
    const reason = 'the leading tab closed';
    this.handler.transport(null);
    this.handler.closed({
      code: CloseCode.Abnormal,
      reason,
      failure: `connection closed: ${reason} (${CloseCode.Abnormal})`,
    });
    this.handler.state('reconnecting');
  }

  private command(command: TabCommand): void {
    this.post({ kind: 'command', from: this.id, command });
  }

  private post(message: TabMessage): void {
    this.channel?.postMessage(message);
  }

  private setRole(role: TabRole): void {
    if (this.role !== role) {
      this.role = role;
      this.handler.role(role);
    }
  }

  private lockFailed(error: unknown): void {
    if (this.abort?.signal.aborted || !this.running) {
      return; // this tab closed: its queued lock requests were called off
    }
    // A lock manager that fails (a document being torn down): this tab stops sharing.
    const message = error instanceof Error ? error.message : String(error);
    this.shutdown();
    this.handler.transport(null);
    this.handler.stopped({ state: 'closed', message: `tab sharing failed: ${message}` });
  }
}

function randomId(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36)}`;
}
