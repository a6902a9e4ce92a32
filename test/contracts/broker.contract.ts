import type { Broker } from '../../src/core/broker/broker.interface';
import type { Awaitable } from './awaitable';

/**
 * What every Broker guarantees (broker.interface.ts) on one instance. `factory` returns a broker
 * and, where the implementation has them, a second instance of the same cluster.
 */
export function describeBroker(
  name: string,
  factory: () => Awaitable<{ broker: Broker; peer?: Broker; close(): Awaitable<void> }>,
): void {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker;
    let close: () => Awaitable<void>;
    const heard: Array<[string, string]> = [];
    beforeAll(async () => {
      ({ broker, close } = await factory());
      broker.onMessage((channel, message) => heard.push([channel, message]));
    });
    beforeEach(() => heard.splice(0));
    afterAll(async () => {
      await close();
    });

    it('delivers its own publication to its handlers at once, while subscribed', async () => {
      await broker.subscribe('c1');
      const published = broker.publish('c1', 'one');
      expect(heard).toEqual([['c1', 'one']]); // before the promise settles
      await published;
      expect(heard).toEqual([['c1', 'one']]);
    });

    it('delivers nothing on a channel it is not subscribed to, or no longer', async () => {
      await broker.publish('c2', 'unheard');
      await broker.subscribe('c3');
      await broker.unsubscribe('c3');
      await broker.publish('c3', 'unheard');
      expect(heard).toEqual([]);
    });

    it('keeps publish order', async () => {
      await broker.subscribe('c4');
      await Promise.all(Array.from({ length: 20 }, (_, i) => broker.publish('c4', String(i))));
      expect(heard.map(([, message]) => message)).toEqual(
        Array.from({ length: 20 }, (_, i) => String(i)),
      );
    });
  });
}
