import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { Node } from '../core/node';
import { inBatches } from '../common/batches';
import { ExpiringMap } from '../common/expiring-map';
import { InstanceLease } from '../redis/instance-lease';
import { RevocationStore } from './revocation-store.interface';

/** The bus topic on which instances tell each other of a revocation. */
const REVOKED_TOPIC = 'revoked';
const WRITE_BACK_CONCURRENCY = 200;

/**
 * Revoked sessions: the shared store, plus every revocation this instance has seen, kept in memory
 * until the token would have expired (docs/operations.md, Cluster mode). Each instance learns of every revocation (from
 * the bus, and from the store at boot), so that when Redis comes back without its data the
 * revocations are written back, and a revoked session never works again.
 */
@Injectable()
export class Revocations implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(Revocations.name);
  /** session id → when its revocation may be forgotten (ms since the epoch) */
  private readonly seen = new ExpiringMap<string, number>();

  constructor(
    @Inject(RevocationStore) private readonly store: RevocationStore,
    private readonly bus: Node,
    @Inject(InstanceLease) private readonly lease: InstanceLease | null,
  ) {}

  onModuleInit(): void {
    this.bus.onNotice(REVOKED_TOPIC, (payload) => {
      const { sessionId, until } = JSON.parse(payload) as { sessionId: string; until: number };
      this.remember(sessionId, until);
    });
    this.lease?.onResync(() => this.writeBack());
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
    this.seen.dispose();
  }

  /** Learns what the store holds (revocations older than this instance), then adds its own. */
  private async writeBack(): Promise<void> {
    const now = Date.now();
    for (const { sessionId, ttlMs } of await this.store.list()) {
      this.remember(sessionId, now + ttlMs);
    }
    const mine = [...this.seen.keys()].flatMap((sessionId) => {
      const until = this.seen.get(sessionId);
      return until === undefined ? [] : [{ sessionId, ttlMs: until - Date.now() }];
    });
    await inBatches(mine, WRITE_BACK_CONCURRENCY, async ({ sessionId, ttlMs }) => {
      if (ttlMs > 0) {
        await this.store.revoke(sessionId, ttlMs);
      }
    });
    if (mine.length > 0) {
      this.logger.log({ msg: 'revocations written back', revocations: mine.length });
    }
  }

  private remember(sessionId: string, until: number): void {
    const ttlMs = until - Date.now();
    if (ttlMs > 0) {
      this.seen.set(sessionId, until, ttlMs);
    }
  }
}
