import type { Awaitable } from './awaitable';
import type { TicketClaims, TicketStore } from '../../libs/nest/src/tickets/ticket-store.interface';

const claims = (userId: string): TicketClaims => ({
  userId,
  name: userId,
  sessionId: `session-${userId}`,
  expiresAt: 4_102_444_800_000,
  rooms: ['team-1:*'],
  ticketExpiresAt: 4_102_444_800_000,
});

/** What every TicketStore guarantees (ticket-store.interface.ts). */
export function describeTicketStore(
  name: string,
  factory: () => Awaitable<{ store: TicketStore; close(): Awaitable<void> }>,
): void {
  describe(`TicketStore contract: ${name}`, () => {
    let store: TicketStore;
    let close: () => Awaitable<void>;
    beforeAll(async () => ({ store, close } = await factory()));
    afterAll(async () => {
      await close();
    });

    it('returns the claims once', async () => {
      await store.put('h1', claims('alice'), 10_000);
      expect(await store.take('h1')).toEqual(claims('alice'));
      expect(await store.take('h1')).toBeNull();
    });

    it('returns null for an unknown hash', async () => {
      expect(await store.take('never-stored')).toBeNull();
    });

    it('forgets a ticket after its ttl', async () => {
      await store.put('h2', claims('bob'), 100);
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(await store.take('h2')).toBeNull();
    });

    it('gives the claims to exactly one of many concurrent takes', async () => {
      await store.put('h3', claims('carol'), 10_000);
      const results = await Promise.all(Array.from({ length: 20 }, () => store.take('h3')));
      expect(results.filter((result) => result !== null)).toHaveLength(1);
    });
  });
}
