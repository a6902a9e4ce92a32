import type { RedisConnections } from '../redis/redis.connections';
import type { RevocationStore } from './revocation-store.interface';

const MGET_CHUNK = 500;
const SCAN_COUNT = 1000;

/** Revoked session ids as Redis keys that expire with the token. */
export class RedisRevocationStore implements RevocationStore {
  constructor(private readonly redis: RedisConnections) {}

  async revoke(sessionId: string, ttlMs: number): Promise<void> {
    await this.redis.run('revocation', (r) => r.set(this.key(sessionId), '1', 'PX', ttlMs));
  }

  async isRevoked(sessionId: string): Promise<boolean> {
    return (await this.redis.run('revocation', (r) => r.exists(this.key(sessionId)))) === 1;
  }

  async revokedAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    const revoked = new Set<string>();
    for (let start = 0; start < sessionIds.length; start += MGET_CHUNK) {
      const chunk = sessionIds.slice(start, start + MGET_CHUNK);
      const keys = chunk.map((id) => this.key(id));
      // Redis Cluster: the keys lie in many slots, and one MGET may not span them.
      const values = await this.redis.run('revocation', (r) =>
        this.redis.mode === 'cluster' ? Promise.all(keys.map((key) => r.get(key))) : r.mget(keys),
      );
      values.forEach((value, index) => value !== null && revoked.add(chunk[index]));
    }
    return revoked;
  }

  /** Scans every master (the one server, or each shard of a cluster). */
  async list(): Promise<Array<{ sessionId: string; ttlMs: number }>> {
    const prefix = this.key('');
    const live: Array<{ sessionId: string; ttlMs: number }> = [];
    for (const node of this.redis.masters()) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.run('revocation', () =>
          node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', SCAN_COUNT),
        );
        cursor = next;
        if (keys.length > 0) {
          const ttls = await this.redis.run('revocation', () =>
            Promise.all(keys.map((key) => node.pttl(key))),
          );
          keys.forEach((key, i) => {
            if (ttls[i] > 0) {
              live.push({ sessionId: key.slice(prefix.length), ttlMs: ttls[i] });
            }
          });
        }
      } while (cursor !== '0');
    }
    return live;
  }

  private key(sessionId: string): string {
    return this.redis.key('revoked', sessionId);
  }
}
