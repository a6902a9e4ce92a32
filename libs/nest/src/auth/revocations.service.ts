import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { CloseCode } from '@switchboard/protocol';
import { Node } from '../core/node';
import { inBatches } from '../common/batches';
import { ExpiringMap } from '../common/expiring-map';
import { Lease } from '../redis/lease';
import { RevocationStore } from './revocation-store.interface';

/** The bus topic on which instances tell each other of a revocation. */
const REVOKED_TOPIC = 'revoked';
/** The bus topic of revocations that Redis had lost and an instance wrote back. */
const RESTORED_TOPIC = 'revocations.restored';
const WRITE_BACK_CONCURRENCY = 200;
/** Revocations per `revocations.restored` notice. */
const RESTORED_PER_NOTICE = 500;
/** How soon an announcement the bus refused (it reconnects after Redis) is tried again. */
const ANNOUNCE_RETRY_MS = 1_000;

interface Revocation {
  sessionId: string;
  /** When it may be forgotten, in ms since the epoch. */
  until: number;
}

/**
 * Revoked sessions: the shared store, plus every revocation this instance has seen, kept in memory
 * until the token would have expired (docs/operations.md, Cluster mode). Each instance learns of every revocation (from
 * the bus, and from the store at boot), so that when Redis comes back without its data the
 * revocations are written back, and a revoked session never works again. A revocation that Redis
 * lacked when it was written back is announced, and every instance closes that session's sockets
 * (`4003`), as at a logout: one may have opened meanwhile on an instance that did not know of it.
 */
@Injectable()
export class Revocations implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(Revocations.name);
  /** session id → when its revocation may be forgotten (ms since the epoch) */
  private readonly seen = new ExpiringMap<string, number>();
  /** Written back, not announced yet: session id → until. */
  private readonly unannounced = new Map<string, number>();
  private announceRetry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    @Inject(RevocationStore) private readonly store: RevocationStore,
    private readonly bus: Node,
    private readonly lease: Lease,
  ) {}

  onModuleInit(): void {
    this.bus.onNotice(REVOKED_TOPIC, (payload) => {
      const { sessionId, until } = JSON.parse(payload) as { sessionId: string; until: number };
      this.remember(sessionId, until);
    });
    this.bus.onNotice(RESTORED_TOPIC, (payload) => {
      for (const { sessionId, until } of JSON.parse(payload) as Revocation[]) {
        this.remember(sessionId, until);
      }
    });
    this.lease.onResync(() => this.writeBack());
  }

  /**
   * Revokes the session for `ttlMs` on every instance.
   *
   * @throws StoreUnavailableError (nothing was revoked then)
   */
  async revoke(sessionId: string, ttlMs: number): Promise<void> {
    const until = Date.now() + ttlMs;
    await this.store.revoke(sessionId, ttlMs);
    this.remember(sessionId, until);
    try {
      await this.bus.notice(REVOKED_TOPIC, JSON.stringify({ sessionId, until }));
    } catch (error) {
      // The store has it: every instance still refuses the session, only its memory lacks it.
      this.logger.warn({ msg: 'revocation not announced to other instances', err: error });
    }
  }

  /** @throws StoreUnavailableError (unless this instance has seen the revocation itself) */
  async isRevoked(sessionId: string): Promise<boolean> {
    return this.seen.has(sessionId) || this.store.isRevoked(sessionId);
  }

  /** The ids among `sessionIds` that are revoked. @throws StoreUnavailableError */
  async revokedAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    const revoked = await this.store.revokedAmong(sessionIds);
    for (const sessionId of sessionIds) {
      if (this.seen.has(sessionId)) {
        revoked.add(sessionId);
      }
    }
    return revoked;
  }

  onApplicationShutdown(): void {
    this.closed = true;
    clearTimeout(this.announceRetry);
    this.seen.dispose();
  }

  /**
   * Learns what the store holds (revocations older than this instance), writes back what it
   * lacks, and announces those.
   */
  private async writeBack(): Promise<void> {
    const now = Date.now();
    const held = new Set<string>();
    for (const { sessionId, ttlMs } of await this.store.list()) {
      held.add(sessionId);
      this.remember(sessionId, now + ttlMs);
    }
    const missing = [...this.seen.keys()].flatMap((sessionId) => {
      const until = this.seen.get(sessionId);
      return until === undefined || held.has(sessionId) ? [] : [{ sessionId, until }];
    });
    await inBatches(missing, WRITE_BACK_CONCURRENCY, async ({ sessionId, until }) => {
      const ttlMs = until - Date.now();
      if (ttlMs > 0) {
        await this.store.revoke(sessionId, ttlMs);
      }
    });
    if (missing.length > 0) {
      this.logger.log({ msg: 'revocations written back', revocations: missing.length });
    }
    missing.forEach(({ sessionId, until }) => this.unannounced.set(sessionId, until));
    // The revocations are in the store now: the write-back is done whether or not the bus is
    // back yet (it resubscribes beside the lease), and the announcement follows when it is.
    this.announceSoon();
  }

  private announceSoon(): void {
    clearTimeout(this.announceRetry);
    this.announce().catch((error: unknown) => {
      if (this.closed) {
        return; // shutting down: the other instances' write-backs announce them
      }
      this.logger.warn({ msg: 'revocations written back not announced yet; retrying', err: error });
      this.announceRetry = setTimeout(() => this.announceSoon(), ANNOUNCE_RETRY_MS);
      this.announceRetry.unref();
    });
  }

  /**
   * Tells every instance of the revocations written back, and closes their sessions' sockets
   * everywhere, as a logout does.
   *
   * @throws BroadcastUnavailableError (what is left stays in `unannounced`)
   */
  private async announce(): Promise<void> {
    const pending = [...this.unannounced].map(([sessionId, until]) => ({ sessionId, until }));
    for (let start = 0; start < pending.length; start += RESTORED_PER_NOTICE) {
      const chunk = pending.slice(start, start + RESTORED_PER_NOTICE);
      await this.bus.notice(RESTORED_TOPIC, JSON.stringify(chunk));
      await inBatches(chunk, WRITE_BACK_CONCURRENCY, async ({ sessionId }) => {
        await this.bus.close({ sessionId }, CloseCode.SessionRevoked, 'session revoked');
        this.unannounced.delete(sessionId);
      });
    }
  }

  private remember(sessionId: string, until: number): void {
    const ttlMs = until - Date.now();
    if (ttlMs > 0) {
      this.seen.set(sessionId, until, ttlMs);
    }
  }
}
