import type {
  Broker,
  Publication,
  StreamOptions,
} from '../../libs/nest/src/core/broker/broker.interface';
import { waitUntil } from '../support/wait';
import type { Awaitable } from './awaitable';

/** The stream options the contract runs with: a small history with a short life. */
export const CONTRACT_STREAMS: StreamOptions = { size: 5, ttlMs: 300, metaTtlMs: 60_000 };

/**
 * What every Broker guarantees (broker.interface.ts) on one instance, run with
 * `CONTRACT_STREAMS`.
 */
export function describeBroker(
  name: string,
  factory: () => Awaitable<{ broker: Broker; close(): Awaitable<void> }>,
): void {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker;
    let close: () => Awaitable<void>;
    const heard: Array<[string, string, number]> = [];
    beforeAll(async () => {
      ({ broker, close } = await factory());
      broker.onMessage((channel, message, offset) => heard.push([channel, message, offset]));
    });
    beforeEach(() => heard.splice(0));
    afterAll(async () => {
      await close();
    });
    const offsets = (publications: Publication[]) => publications.map((p) => p.offset);

    it('delivers its own publication to its handlers at once, while subscribed', async () => {
      await broker.subscribe('c1');
      const published = broker.publish('c1', 'one');
      expect(heard).toEqual([['c1', 'one', 0]]); // before the promise settles
      await published;
      expect(heard).toEqual([['c1', 'one', 0]]);
    });

    it('delivers nothing on a channel it is not subscribed to, or no longer', async () => {
      await broker.publish('c2', 'unheard');
      await broker.subscribe('c3');
      await broker.unsubscribe('c3');
      await broker.publish('c3', 'unheard');
      await broker.publishToStream('c3', 'unheard either');
      await new Promise((resolve) => setTimeout(resolve, 50)); // an echo would be back by now
      expect(heard).toEqual([]);
    });

    it('keeps publish order', async () => {
      await broker.subscribe('c4');
      await Promise.all(Array.from({ length: 20 }, (_, i) => broker.publish('c4', String(i))));
      expect(heard.map(([, message]) => message)).toEqual(
        Array.from({ length: 20 }, (_, i) => String(i)),
      );
    });

    describe('streams', () => {
      it('keeps nothing for a channel without a stream when asked for existing streams only', async () => {
        await broker.subscribe('s9');
        expect(await broker.publishToStream('s9', 'live only', true)).toBeNull();
        await waitUntil(() => heard.length === 1, 'the live delivery');
        expect(heard).toEqual([['s9', 'live only', 0]]);
        // Nothing was kept: the stream a reader starts now is empty.
        const { position, publications } = await broker.history('s9', { after: 0, limit: 5 });
        expect([position.offset, publications]).toEqual([0, []]);
        // Once it exists, the publication goes into it.
        expect(await broker.publishToStream('s9', 'kept', true)).toEqual({
          epoch: position.epoch,
          offset: 1,
        });
        await waitUntil(() => heard.length === 2, 'the stream delivery');
        expect(heard[1]).toEqual(['s9', 'kept', 1]);
        await broker.unsubscribe('s9');
      });

      it('gives each publication the next offset, from 1, on one epoch, and delivers it with it', async () => {
        await broker.subscribe('s1');
        const positions = await Promise.all(
          Array.from({ length: 8 }, (_, i) => broker.publishToStream('s1', `m${i + 1}`)),
        );
        expect(positions.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect(new Set(positions.map((p) => p.epoch)).size).toBe(1);
        await waitUntil(() => heard.length === 8, 'all eight delivered');
        expect(heard).toEqual(
          Array.from({ length: 8 }, (_, i) => ['s1', `m${i + 1}`, i + 1]), // in offset order
        );
      });

      it('keeps the last `size` publications and reads them after an offset, oldest first', async () => {
        for (let i = 1; i <= 8; i++) {
          await broker.publishToStream('s2', `m${i}`);
        }
        const after5 = await broker.history('s2', { after: 5, limit: 100 });
        expect(after5.position.offset).toBe(8);
        expect(after5.publications).toEqual([
          { offset: 6, message: 'm6' },
          { offset: 7, message: 'm7' },
          { offset: 8, message: 'm8' },
        ]);
        // Only 4..8 are kept (size 5): a reader after 1 finds a gap it can detect.
        expect(
          offsets((await broker.history('s2', { after: 1, limit: 100 })).publications),
        ).toEqual([4, 5, 6, 7, 8]);
        expect((await broker.history('s2', { after: 8, limit: 100 })).publications).toEqual([]);
      });

      it('reads the last publications, or the last before an offset, oldest first', async () => {
        for (let i = 1; i <= 5; i++) {
          await broker.publishToStream('s3', `m${i}`);
        }
        expect(offsets((await broker.history('s3', { limit: 2 })).publications)).toEqual([4, 5]);
        expect(offsets((await broker.history('s3', { before: 4, limit: 2 })).publications)).toEqual(
          [2, 3],
        );
        expect(
          offsets((await broker.history('s3', { before: 2, limit: 10 })).publications),
        ).toEqual([1]);
        const none = await broker.history('s3', { limit: 0 });
        expect(none).toEqual({
          position: { epoch: expect.any(String), offset: 5 },
          publications: [],
        });
      });

      it('gives a stream never published an epoch that its first publication keeps', async () => {
        const empty = await broker.history('s4', { limit: 10 });
        expect(empty.position.offset).toBe(0);
        expect(empty.publications).toEqual([]);
        const first = await broker.publishToStream('s4', 'm1');
        expect(first).toEqual({ epoch: empty.position.epoch, offset: 1 });
      });

      it('forgets the publications ttlMs after the last one, and keeps the position', async () => {
        const { epoch } = await broker.publishToStream('s5', 'm1');
        await broker.publishToStream('s5', 'm2');
        await new Promise((resolve) => setTimeout(resolve, CONTRACT_STREAMS.ttlMs + 100));
        expect(await broker.history('s5', { after: 0, limit: 10 })).toEqual({
          position: { epoch, offset: 2 },
          publications: [],
        });
        expect(await broker.publishToStream('s5', 'm3')).toEqual({ epoch, offset: 3 });
      });

      it('resolves a publication once its own handlers have it, while subscribed', async () => {
        await broker.subscribe('s8');
        await broker.publishToStream('s8', 'm1');
        expect(heard).toEqual([['s8', 'm1', 1]]);
        // Unsubscribed while one is in flight: it resolves all the same.
        const inFlight = broker.publishToStream('s8', 'm2');
        await broker.unsubscribe('s8');
        await expect(inFlight).resolves.toMatchObject({ offset: 2 });
      });

      it('keeps each stream apart', async () => {
        await broker.publishToStream('s6', 'a');
        expect((await broker.publishToStream('s7', 'b')).offset).toBe(1);
        expect((await broker.history('s6', { after: 0, limit: 10 })).publications).toEqual([
          { offset: 1, message: 'a' },
        ]);
      });
    });
  });
}
