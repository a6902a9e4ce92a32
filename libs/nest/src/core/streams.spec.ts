import { unitKit } from '../../../../test/support/unit-kit';
import { roomFrame } from './frames';
import { roomChannel } from './node';
import { parseSince } from './streams';

/** Recovery on the memory broker: what is replayed, what waited, and in which order. */
describe('Streams', () => {
  const kit = unitKit({ HISTORY_SIZE: '3' });
  beforeAll(() => kit.init());
  afterAll(() => kit.dispose());
  const channel = roomChannel('desk');
  const publish = (n: number) =>
    kit.node.publishToStreams([channel], roomFrame('note', { n }, 'desk'));
  const offsets = (socket: { sent: string[] }) =>
    socket.sent.map((frame) => (JSON.parse(frame) as { offset?: number }).offset);

  /** A socket entering the room as the rooms service makes it: the one core call, then finish. */
  async function enter(userId: string, since?: { epoch: string; offset: number }) {
    const entered = kit.connect(userId);
    const catchup = await kit.streams.enter(
      entered.connection,
      { channel, index: () => kit.hub.join(entered.connection, 'desk') },
      since,
    );
    if (catchup === undefined) {
      throw new Error('history is on in this kit');
    }
    return { ...entered, catchup };
  }

  it('replays what was missed, then what arrived while it read, each offset once, in order', async () => {
    const first = await enter('ann');
    first.catchup.finish();
    const start = first.catchup.recovery.position;
    await publish(1);
    await publish(2);

    const back = await enter('ann', start);
    expect(back.catchup.recovery).toEqual({
      position: { epoch: start.epoch, offset: start.offset + 2 },
      recovered: true,
      missed: 2,
    });
    await publish(3); // live, while the reply is still to be sent: it waits
    expect(back.socket.sent).toEqual([]);
    back.catchup.finish();
    expect(offsets(back.socket)).toEqual([1, 2, 3].map((n) => start.offset + n));
    await publish(4); // and live again after
    expect(offsets(back.socket).at(-1)).toBe(start.offset + 4);
  });

  it('drops a late pub/sub copy of what its position counted, until a newer one passes it', async () => {
    // In cluster mode the position is read on the command link while the pub/sub copy of the same
    // publication may still be on its way to this instance: it must not reach the client twice.
    const entered = await enter('eve');
    const { epoch, offset } = entered.catchup.recovery.position;
    entered.catchup.finish();
    const frame = (n: number) => `{"type":"note","n":${n}}`;
    entered.connection.publish(channel, epoch, offset, frame(offset)); // late copy: dropped
    entered.connection.publish(channel, epoch, offset + 1, frame(offset + 1));
    entered.connection.publish(channel, 'new-epoch', 1, frame(1)); // the stream was lost: passes
    expect(entered.socket.sent).toEqual([frame(offset + 1), frame(1)]);
  });

  it('after a new epoch, delivers the restarted offsets that the old position would hide', async () => {
    await publish(1);
    await publish(2);
    const entered = await enter('fay');
    const { epoch, offset } = entered.catchup.recovery.position;
    expect(offset).toBeGreaterThanOrEqual(2);
    entered.catchup.finish();
    entered.connection.publish(channel, `${epoch}x`, 1, 'a'); // Redis lost the stream: 1 again
    entered.connection.publish(channel, `${epoch}x`, 2, 'b');
    expect(entered.socket.sent).toEqual(['a', 'b']);
  });

  it('tells a client that is too far behind, or on another epoch, to reset, and replays nothing', async () => {
    const { position } = (await enter('ben')).catchup.recovery;
    for (let n = 0; n < 4; n++) {
      await publish(n); // HISTORY_SIZE is 3: the first of these is gone
    }
    const late = await enter('ben', position);
    expect(late.catchup.recovery).toMatchObject({ recovered: false, missed: 0 });
    late.catchup.finish();
    expect(late.socket.sent).toEqual([]);
    const stranger = await enter('ben', { epoch: 'other', offset: position.offset });
    expect(stranger.catchup.recovery.recovered).toBe(false);
  });

  it('reads since=<epoch>:<offset>, and makes a malformed one unrecoverable', () => {
    expect(parseSince(null)).toBeUndefined();
    expect(parseSince('abc:12')).toEqual({ epoch: 'abc', offset: 12 });
    for (const bad of ['abc', ':3', 'abc:-1', 'abc:x', 'abc:1.5', `${'e'.repeat(65)}:1`]) {
      expect(parseSince(bad)).toEqual({ epoch: '', offset: 0 });
    }
  });
});
