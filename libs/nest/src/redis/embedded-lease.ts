import { Lease } from './lease';

/**
 * The lease in embedded mode (no `REDIS_URL`): this instance is the whole cluster and its stores
 * are in its own memory, so they never lose its state nor lack another instance's. Never
 * restoring, always synced; no listener is ever called, and there is nothing to release.
 */
export class EmbeddedLease extends Lease {
  constructor(readonly instanceId: string) {
    super();
  }

  get synced(): boolean {
    return true;
  }

  get restoring(): boolean {
    return false;
  }

  onResync(): void {}

  onPurge(): void {}

  onRecovered(): void {}

  release(): Promise<void> {
    return Promise.resolve();
  }
}
