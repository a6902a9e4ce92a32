import type {
  PresenceMember,
  PresenceStore,
} from '../../libs/nest/src/realtime/presence/presence-store.interface';
import type { Awaitable } from './awaitable';

const member = (userId: string, connectionId: string, instanceId = 'i1'): PresenceMember => ({
  userId,
  name: userId.toUpperCase(),
  connectionId,
  instanceId,
});

/** What every PresenceStore guarantees (presence-store.interface.ts). */
export function describePresenceStore(
  name: string,
  factory: () => Awaitable<{ store: PresenceStore; close(): Awaitable<void> }>,
): void {
  describe(`PresenceStore contract: ${name}`, () => {
    let store: PresenceStore;
    let close: () => Awaitable<void>;
    beforeAll(async () => ({ store, close } = await factory()));
    afterAll(async () => {
      await close();
    });

    it('says when a user arrives and when their last connection leaves', async () => {
      expect(await store.join('r1', member('ann', 'c1'))).toBe(true);
      expect(await store.join('r1', member('ann', 'c2', 'i2'))).toBe(false);
      expect(await store.join('r1', member('ben', 'c3'))).toBe(true);
      expect(await store.members('r1', 10)).toEqual({
        members: expect.arrayContaining([
          { id: 'ann', name: 'ANN' },
          { id: 'ben', name: 'BEN' },
        ]),
        count: 2,
      });
      expect(await store.leave('r1', member('ann', 'c1'))).toEqual({ gone: false, count: 2 });
      expect(await store.leave('r1', member('ann', 'c2', 'i2'))).toEqual({ gone: true, count: 1 });
      expect(await store.leave('r1', member('ann', 'c2', 'i2'))).toEqual({ gone: false, count: 1 });
      expect(await store.members('r1', 10)).toEqual({
        members: [{ id: 'ben', name: 'BEN' }],
        count: 1,
      });
    });

    it('lists at most `limit` members and counts them all', async () => {
      for (let i = 0; i < 25; i++) {
        await store.join('big', member(`u${i}`, `c${i}`));
      }
      const listed = await store.members('big', 10);
      expect(listed.members).toHaveLength(10);
      expect(new Set(listed.members.map((m) => m.id)).size).toBe(10);
      expect(listed.count).toBe(25);
    });

    it('purges a dead instance: its connections go, and the users with no other one are named', async () => {
      await store.join('p1', member('cat', 'c1', 'dead'));
      await store.join('p1', member('dan', 'c2', 'dead'));
      await store.join('p1', member('dan', 'c3', 'alive'));
      await store.join('p2', member('cat', 'c4', 'dead'));
      await store.join('p2', member('eve', 'c5', 'alive'));
      const purged = await store.purgeInstance('dead');
      expect(purged).toEqual(
        expect.arrayContaining([
          { room: 'p1', user: { id: 'cat', name: 'CAT' }, count: 1 },
          { room: 'p2', user: { id: 'cat', name: 'CAT' }, count: 1 },
        ]),
      );
      expect(purged).toHaveLength(2);
      expect((await store.members('p1', 10)).members).toEqual([{ id: 'dan', name: 'DAN' }]);
      expect((await store.members('p2', 10)).members).toEqual([{ id: 'eve', name: 'EVE' }]);
      expect(await store.purgeInstance('dead')).toEqual([]);
      // The connection that survived leaves as usual.
      expect(await store.leave('p1', member('dan', 'c3', 'alive'))).toEqual({
        gone: true,
        count: 0,
      });
    });

    it('does not count a connection twice', async () => {
      expect(await store.join('twice', member('fay', 'c1'))).toBe(true);
      expect(await store.join('twice', member('fay', 'c1'))).toBe(false);
      expect(await store.leave('twice', member('fay', 'c1'))).toEqual({ gone: true, count: 0 });
      expect(await store.members('twice', 10)).toEqual({ members: [], count: 0 });
    });

    it('answers an empty room', async () => {
      expect(await store.members('nobody-here', 10)).toEqual({ members: [], count: 0 });
    });
  });
}
