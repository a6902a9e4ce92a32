/**
 * What this instance does after it lost its lease: write back its state; see `onResync`.
 * `announce` is true when another instance purged this one (and told everyone its members left).
 */
export type ResyncListener = (options: { announce: boolean }) => Promise<void>;
/** What this instance does for an instance it claimed: remove the dead one's entries. */
export type PurgeListener = (deadInstanceId: string) => Promise<void>;

/**
 * This instance's membership of the cluster, as the rest of the code relies on it: whether what
 * the shared stores hold can be decided on, and the steps to run when this instance's state (or a
 * dead instance's) has to be written back (or removed). Inject it by this class.
 *
 * `InstanceLease` is the implementation in cluster mode (docs/operations.md, Cluster mode).
 * `EmbeddedLease` is the one in embedded mode, a cluster of one whose state lives in its own
 * memory: never `restoring`, always `synced`, its listeners never run, and `release` does nothing.
 */
export abstract class Lease {
  /** This instance's id (`Instance.id`), which its entries in the shared stores carry. */
  abstract readonly instanceId: string;

  /** This instance's state is in the shared stores, and no other instance is writing its own back. */
  abstract get synced(): boolean;

  /**
   * The shared stores answer, but may lack state that instances are still writing back (such as
   * revocations): readiness, tickets and handshakes wait until it is false.
   */
  abstract get restoring(): boolean;

  /** Registers a write-back step, run each time this instance's state may be missing from the stores. */
  abstract onResync(listener: ResyncListener): void;

  /** Registers a clean-up step, run for each dead instance that this one claims. */
  abstract onPurge(listener: PurgeListener): void;

  /** Registers a step run each time this instance's state is back in the stores after an outage. */
  abstract onRecovered(listener: () => void): void;

  /**
   * Gives the lease up at a clean shutdown, once this instance removed its entries: nobody needs
   * to purge it then. Rejects when the stores cannot be reached; the lease then expires by itself.
   */
  abstract release(): Promise<void>;
}
