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

/** Every member of a room, page by page (`limit` each); fails on a repeated member. */
async function pageThrough(
  store: PresenceStore,
  room: string,
  limit: number,
  between: (page: number) => Promise<void> = () => Promise.resolve(),
): Promise<string[]> {
  const seen: string[] = [];
  let after: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const { members, next } = await store.page(room, limit, after);
    expect(members.length).toBeLessThanOrEqual(limit);
    seen.push(...members.map((m) => m.id));
    if (next === undefined) {
      break;
    }
    expect(next).toBe(members.at(-1)?.id);
    after = next;
    await between(page);
  }
  expect(new Set(seen).size).toBe(seen.length);
  return seen;
}

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

    it('says when a user arrives and when their last connection leaves, with the count', async () => {
      expect(await store.join('r1', member('ann', 'c1'))).toEqual({ fresh: true, count: 1 });
      expect(await store.join('r1', member('ann', 'c2', 'i2'))).toEqual({ fresh: false, count: 1 });
      expect(await store.join('r1', member('ben', 'c3'))).toEqual({ fresh: true, count: 2 });
      expect(await store.page('r1', 10)).toEqual({
        members: [
          { id: 'ann', name: 'ANN' },
          { id: 'ben', name: 'BEN' },
        ],
        count: 2,
      });
      expect(await store.leave('r1', member('ann', 'c1'))).toEqual({ gone: false, count: 2 });
      expect(await store.leave('r1', member('ann', 'c2', 'i2'))).toEqual({ gone: true, count: 1 });
      expect(await store.leave('r1', member('ann', 'c2', 'i2'))).toEqual({ gone: false, count: 1 });
      expect(await store.page('r1', 10)).toEqual({
        members: [{ id: 'ben', name: 'BEN' }],
        count: 1,
      });
      expect(await store.count('r1')).toBe(1);
    });

    it('pages in id order with a cursor, and says when the last page came', async () => {
      for (let i = 0; i < 25; i++) {
        await store.join('big', member(`u${String(i).padStart(2, '0')}`, `c${i}`));
      }
      const first = await store.page('big', 10);
      expect(first.members.map((m) => m.id)).toEqual(
        Array.from({ length: 10 }, (_, i) => `u${String(i).padStart(2, '0')}`),
      );
      expect(first).toMatchObject({ count: 25, next: 'u09' });
      const last = await store.page('big', 10, 'u19');
      expect(last.members.map((m) => m.id)).toEqual(['u20', 'u21', 'u22', 'u23', 'u24']);
      expect(last.next).toBeUndefined();
      expect(await pageThrough(store, 'big', 7)).toHaveLength(25);
      // A page that ends exactly at the last member may say more follow; the next one is empty.
      const exact = await store.page('big', 5, 'u19');
      expect(exact.members).toHaveLength(5);
      if (exact.next !== undefined) {
        expect((await store.page('big', 5, exact.next)).members).toEqual([]);
      }
    });

    it('pages without repeating or missing anyone while others come and go', async () => {
      const steady = Array.from({ length: 60 }, (_, i) => `s${String(i).padStart(3, '0')}`);
      for (const id of steady) {
        await store.join('busy', member(id, `c-${id}`));
      }
      let churn = 0;
      const seen = await pageThrough(store, 'busy', 8, async (page) => {
        // Between pages: users join before and after the cursor, and some leave.
        for (const id of [`a${page}`, `s${String(page * 7).padStart(3, '0')}x`, `z${page}`]) {
          await store.join('busy', member(id, `c-${id}-${churn++}`));
        }
        if (page > 1) {
          await store.leave('busy', member(`a${page - 2}`, `c-a${page - 2}-${(page - 2) * 3}`));
        }
      });
      expect(seen).toEqual(expect.arrayContaining(steady));
      expect([...seen].sort()).toEqual(seen); // in id order throughout
    });

    it('checks which of some users are present, with the count, in one answer', async () => {
      await store.join('chk', member('amy', 'c1'));
      await store.join('chk', member('bob', 'c2'));
      await store.join('chk', member('cy', 'c3'));
      await store.leave('chk', member('cy', 'c3'));
      expect(await store.check('chk', ['bob', 'cy', 'nobody'])).toEqual({
        present: [{ id: 'bob', name: 'BOB' }],
        count: 2,
      });
      expect(await store.check('nowhere', ['bob'])).toEqual({ present: [], count: 0 });
      expect(await store.check('chk', [])).toEqual({ present: [], count: 2 });
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
          { room: 'p1', user: { id: 'cat', name: 'CAT' } },
          { room: 'p2', user: { id: 'cat', name: 'CAT' } },
        ]),
      );
      expect(purged).toHaveLength(2);
      expect(await store.page('p1', 10)).toEqual({
        members: [{ id: 'dan', name: 'DAN' }],
        count: 1,
      });
      expect(await store.page('p2', 10)).toEqual({
        members: [{ id: 'eve', name: 'EVE' }],
        count: 1,
      });
      expect(await store.purgeInstance('dead')).toEqual([]);
      // The connection that survived leaves as usual.
      expect(await store.leave('p1', member('dan', 'c3', 'alive'))).toEqual({
        gone: true,
        count: 0,
      });
    });

    it('does not count a connection twice', async () => {
      expect(await store.join('twice', member('fay', 'c1'))).toEqual({ fresh: true, count: 1 });
      expect(await store.join('twice', member('fay', 'c1'))).toEqual({ fresh: false, count: 1 });
      expect(await store.leave('twice', member('fay', 'c1'))).toEqual({ gone: true, count: 0 });
      expect(await store.page('twice', 10)).toEqual({ members: [], count: 0 });
    });

    it('answers an empty room', async () => {
      expect(await store.page('nobody-here', 10)).toEqual({ members: [], count: 0 });
      expect(await store.page('nobody-here', 10, 'x')).toEqual({ members: [], count: 0 });
      expect(await store.count('nobody-here')).toBe(0);
    });
  });
}
