import type { Awaitable } from './awaitable';
import type {
  ConnectionEntry,
  ConnectionRegistry,
} from '../../libs/nest/src/realtime/connections/connection-registry.interface';

const entry = (
  connectionId: string,
  userId: string,
  connectedAt: number,
  instanceId = 'i1',
): ConnectionEntry => ({
  connectionId,
  userId,
  sessionId: `session-${userId}`,
  instanceId,
  connectedAt,
});

/** What every ConnectionRegistry guarantees (connection-registry.interface.ts). */
export function describeConnectionRegistry(
  name: string,
  factory: () => Awaitable<{ registry: ConnectionRegistry; close(): Awaitable<void> }>,
): void {
  describe(`ConnectionRegistry contract: ${name}`, () => {
    let registry: ConnectionRegistry;
    let close: () => Awaitable<void>;
    beforeAll(async () => ({ registry, close } = await factory()));
    afterAll(async () => {
      await close();
    });

    it('answers a user’s connections oldest first, the new one included', async () => {
      await registry.add(entry('c2', 'u1', 2000, 'i2'));
      await registry.add(entry('c1', 'u1', 1000));
      const all = await registry.add(entry('c3', 'u1', 3000));
      expect(all.map((e) => e.connectionId)).toEqual(['c1', 'c2', 'c3']);
      expect(all[1]).toEqual(entry('c2', 'u1', 2000, 'i2'));
    });

    it('purges every entry of a dead instance', async () => {
      await registry.add(entry('d1', 'u3', 1000, 'dead'));
      await registry.add(entry('d2', 'u3', 2000));
      await registry.add(entry('d3', 'u4', 3000, 'dead'));
      await registry.purgeInstance('dead');
      expect((await registry.ofUser('u3')).map((e) => e.connectionId)).toEqual(['d2']);
      expect(await registry.ofUser('u4')).toEqual([]);
    });

    it('forgets removed entries and ignores unknown ones', async () => {
      await registry.add(entry('c4', 'u2', 1000));
      await registry.remove(entry('c4', 'u2', 1000));
      await registry.remove(entry('nope', 'u2', 1000));
      expect(await registry.ofUser('u2')).toEqual([]);
    });
  });
}
