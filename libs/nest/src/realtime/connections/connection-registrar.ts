import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { CloseCode } from '@switchboard/protocol';
import { inBatches } from '../../common/batches';
import { AppConfig } from '../../config/app-config';
import { Instance } from '../../config/instance';
import type { Connection } from '../../core/connection';
import { Hub } from '../../core/hub';
import { Node } from '../../core/node';
import { Lease } from '../../redis/lease';
import { type ConnectionEntry, ConnectionRegistry } from './connection-registry.interface';

/** Registry entries written back at once after Redis lost them. */
const WRITE_BACK_CONCURRENCY = 200;

/**
 * This instance's sockets in the cluster-wide connection registry: registers each accepted one
 * and applies `MAX_CONNECTIONS_PER_USER` (the newest wins: the oldest, on any instance, closes with
 * `4009`), unregisters each closed one (again once Redis is back, if it could not), writes them
 * all back after Redis lost them, and removes a dead instance's entries when this one purges it.
 */
@Injectable()
export class ConnectionRegistrar implements OnModuleInit {
  private readonly logger = new Logger(ConnectionRegistrar.name);
  /** Entries of closed sockets that could not be removed (Redis was out of reach). */
  private readonly unregistered = new Map<string, ConnectionEntry>();

  constructor(
    private readonly config: AppConfig,
    private readonly hub: Hub,
    private readonly node: Node,
    private readonly instance: Instance,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
    private readonly lease: Lease,
  ) {}

  onModuleInit(): void {
    this.lease.onResync(() => this.writeBack());
    this.lease.onPurge((instanceId) => this.registry.purgeInstance(instanceId));
    this.lease.onRecovered(() => void this.retry());
  }

  /** Whether entries of closed sockets wait for Redis to come back. */
  get hasUnremoved(): boolean {
    return this.unregistered.size > 0;
  }

  /** Registers the socket cluster-wide and enforces `MAX_CONNECTIONS_PER_USER`: newest wins. */
  async register(connection: Connection): Promise<void> {
    const entry = this.entryOf(connection);
    try {
      const entries = await this.registry.add(entry);
      if (!connection.open) {
        // Closed while registering: its unregister ran before the entry existed.
        await this.registry.remove(entry);
        return;
      }
      const excess = entries.length - this.config.limits.maxConnectionsPerUser;
      for (const older of entries
        .filter((e) => e.connectionId !== connection.id)
        .slice(0, excess)) {
        await this.replace(older);
      }
    } catch (error) {
      this.logger.warn({
        msg: 'connection registry unavailable; per-user limit not enforced for this socket',
        connectionId: connection.id,
        err: error,
      });
    }
  }

  /** Removes a closed socket's entry; never rejects (a failure is retried when Redis is back). */
  async unregister(connection: Connection): Promise<void> {
    const entry = this.entryOf(connection);
    try {
      await this.registry.remove(entry);
    } catch (error) {
      this.unregistered.set(entry.connectionId, entry);
      this.logger.warn({
        msg: 'connection not unregistered yet; retried when Redis is back',
        connectionId: connection.id,
        err: error,
      });
    }
  }

  private async replace(entry: ConnectionEntry): Promise<void> {
    const local = this.hub.get(entry.connectionId);
    if (local !== undefined) {
      local.close(CloseCode.Replaced, 'replaced by a newer connection');
    } else if (entry.instanceId === this.instance.id) {
      await this.registry.remove(entry); // a leftover of a socket that is gone already
    } else {
      await this.node.close(
        { connectionId: entry.connectionId, instanceId: entry.instanceId },
        CloseCode.Replaced,
        'replaced by a newer connection',
      );
    }
  }

  /** Redis lost this instance's entries (or another instance purged them): write them back. */
  private async writeBack(): Promise<void> {
    await inBatches([...this.hub.all()], WRITE_BACK_CONCURRENCY, async (connection) => {
      const entry = this.entryOf(connection);
      await this.registry.add(entry);
      if (this.hub.get(connection.id) === undefined) {
        await this.registry.remove(entry); // closed meanwhile: its own removal came first
      }
    });
    this.unregistered.clear();
  }

  private async retry(): Promise<void> {
    for (const [connectionId, entry] of [...this.unregistered]) {
      try {
        await this.registry.remove(entry);
        this.unregistered.delete(connectionId);
      } catch (error) {
        this.logger.warn({ msg: 'registry clean-up retry failed', err: error });
        return;
      }
    }
  }

  private entryOf(connection: Connection): ConnectionEntry {
    return {
      connectionId: connection.id,
      userId: connection.userId,
      sessionId: connection.session.sessionId,
      instanceId: this.instance.id,
      connectedAt: connection.connectedAt,
    };
  }
}
