import { Connection, type Transport } from './connection';
import { type Corkable, WriteBatch } from './write-batch';

/** A byte stream that records cork depth and what left in which write. */
class Wire implements Corkable {
  depth = 0;
  pending: string[] = [];
  readonly writes: string[][] = [];
  cork(): void {
    this.depth += 1;
  }
  uncork(): void {
    this.depth -= 1;
    if (this.depth === 0) {
      this.flush();
    }
  }
  write(chunk: string): void {
    this.pending.push(chunk);
    if (this.depth === 0) {
      this.flush();
    }
  }
  private flush(): void {
    if (this.pending.length > 0) {
      this.writes.push(this.pending);
      this.pending = [];
    }
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function connectionOn(wire: Wire): Connection {
  const socket: Transport = {
    readyState: 1,
    bufferedAmount: 0,
    send: (frame) => wire.write(frame.toString()),
    close: () => undefined,
    terminate: () => undefined,
  };
  return new Connection({
    id: 'c1',
    socket,
    wire,
    session: { userId: 'u', name: 'u', sessionId: 's', expiresAt: 0, rooms: null },
    ip: '10.0.0.1',
    connectedAt: 0,
    sendBufferMaxBytes: 1 << 20,
    messagesPerWindow: 10,
    messageWindowMs: 1000,
    metrics: { sent: () => undefined },
  });
}

describe('WriteBatch', () => {
  it('uncorks every stream it holds once, at the end of the turn', async () => {
    const batch = new WriteBatch();
    const [a, b] = [new Wire(), new Wire()];
    batch.hold(a);
    batch.hold(b);
    a.write('1');
    b.write('2');
    expect([a.depth, b.depth]).toEqual([1, 1]);
    expect(a.writes).toEqual([]);
    await turn();
    expect([a.depth, b.depth]).toEqual([0, 0]);
    expect(a.writes).toEqual([['1']]);
    expect(b.writes).toEqual([['2']]);
  });

  it('uncorks the others when one stream fails to flush', async () => {
    const batch = new WriteBatch();
    const [broken, fine] = [new Wire(), new Wire()];
    broken.uncork = () => {
      throw new Error('EPIPE');
    };
    batch.hold(broken);
    batch.hold(fine);
    fine.write('x');
    await turn();
    expect(fine.writes).toEqual([['x']]);
  });

  it('starts a new batch for what is sent while one is being flushed', async () => {
    const batch = new WriteBatch();
    const [a, b] = [new Wire(), new Wire()];
    a.uncork = () => {
      Wire.prototype.uncork.call(a);
      batch.hold(b); // e.g. a send caused by the flush
      b.write('late');
    };
    batch.hold(a);
    await turn();
    expect(b.depth).toBe(1);
    await turn();
    expect(b.depth).toBe(0);
    expect(b.writes).toEqual([['late']]);
  });
});

describe('Connection with a wire', () => {
  it("sends a turn's frames in one write, and the next turn's in another", async () => {
    const wire = new Wire();
    const connection = connectionOn(wire);
    connection.send('a');
    connection.send(Buffer.from('b'));
    connection.send('c');
    expect(wire.writes).toEqual([]);
    await turn();
    expect(wire.writes).toEqual([['a', 'b', 'c']]);
    connection.send('d');
    await turn();
    expect(wire.writes).toEqual([['a', 'b', 'c'], ['d']]);
    expect(wire.depth).toBe(0);
  });
});
