import { CloseCode } from '@switchboard/protocol';
import { unitKit } from '../../../../test/support/unit-kit';
import { BroadcastUnavailableError, type Broker } from './broker/broker.interface';
import { Hub } from './hub';
import { Node, roomChannel, userChannel } from './node';

describe('Node (embedded broker)', () => {
  const kit = unitKit();
  beforeAll(() => kit.init());
  afterAll(() => kit.dispose());

  it('serves a room through the broker, except the named connection', async () => {
    const a = kit.connect('ann');
    const b = kit.connect('ben');
    kit.hub.join(a.connection, 'r1');
    kit.hub.join(b.connection, 'r1');
    await kit.node.interest(roomChannel('r1'), true);
    await kit.node.publishEvents([roomChannel('r1')], '{"type":"x"}', a.connection.id);
    expect(a.socket.sent).toEqual([]);
    expect(b.socket.sent).toEqual(['{"type":"x"}']);
  });

  it('reaches a user only while one of their sockets is tracked, and each socket once', async () => {
    const first = kit.connect('cat');
    await kit.node.publishEvents([userChannel('cat')], 'before');
    expect(first.socket.sent).toEqual([]); // not tracked yet: the channel has no interest
    await kit.node.interest(userChannel('cat'), true); // the user's first local socket subscribes
    const second = kit.connect('cat');
    await kit.node.interest(userChannel('cat'), false);
    await kit.node.publishEvents([userChannel('cat'), userChannel('cat')], 'after');
    expect(first.socket.sent).toEqual(['after', 'after']); // two channels named, two sends
    expect(second.socket.sent).toEqual(['after', 'after']);
  });

  it('closes a session’s sockets and leaves the others open', async () => {
    const target = kit.connect('dan', { sessionId: 'sess-dan' });
    const other = kit.connect('dan', { sessionId: 'sess-other' });
    await kit.node.close({ sessionId: 'sess-dan' }, CloseCode.SessionRevoked, 'session revoked');
    expect(target.socket.closed).toEqual({ code: 4003, reason: 'session revoked' });
    expect(other.socket.closed).toBeNull();
  });

  it('hands notices to their topic’s handler, on this instance too', async () => {
    const heard: string[] = [];
    kit.node.onNotice('topic', (payload) => heard.push(payload));
    await kit.node.notice('topic', 'hello');
    expect(heard).toEqual(['hello']);
  });

  it('sends nothing and says so while the broker is unavailable', async () => {
    const down: Broker = {
      available: false,
      subscriptions: 0,
      publish: () => Promise.reject(new Error('must not be called')),
      publishToStream: (() =>
        Promise.reject(new Error('must not be called'))) as Broker['publishToStream'],
      history: () => Promise.reject(new Error('must not be called')),
      subscribe: () => Promise.resolve(),
      unsubscribe: () => Promise.resolve(),
      onMessage: () => undefined,
      onResubscribed: () => undefined,
    };
    const node = new Node(down, new Hub(), kit.instance, kit.metrics, kit.config);
    await expect(node.publishEvents([roomChannel('r')], 'x')).rejects.toBeInstanceOf(
      BroadcastUnavailableError,
    );
    await expect(node.close({ userId: 'u' }, 4003, 'r')).rejects.toBeInstanceOf(
      BroadcastUnavailableError,
    );
  });

  it('lets a room’s second local joiner wait until the first one’s subscription took effect', async () => {
    let subscribed: () => void = () => undefined;
    const slow: Broker = {
      available: true,
      subscriptions: 0,
      publish: () => Promise.resolve(),
      publishToStream: () => Promise.resolve({ epoch: 'e', offset: 1 }),
      history: () => Promise.resolve({ position: { epoch: 'e', offset: 0 }, publications: [] }),
      subscribe: () => new Promise<void>((resolve) => (subscribed = resolve)),
      unsubscribe: () => Promise.resolve(),
      onMessage: () => undefined,
      onResubscribed: () => undefined,
    };
    const node = new Node(slow, new Hub(), kit.instance, kit.metrics, kit.config);
    const order: string[] = [];
    const first = node.interest(roomChannel('r'), true).then(() => order.push('first'));
    const second = node.interest(roomChannel('r'), false).then(() => order.push('second'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]); // the second joiner does not read the stream before it is live
    subscribed();
    await Promise.all([first, second]);
    expect(order.sort()).toEqual(['first', 'second']);
    await node.interest(roomChannel('r'), false); // nothing on its way any more: at once
  });
});
