import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { UnauthenticatedConnections } from './unauthenticated-connections';

/** A TCP socket as the server's `connection` event hands it over: an address, a port, a close. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(
    readonly remoteAddress: string | undefined,
    readonly remotePort: number | undefined,
  ) {
    super();
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

let nextPort = 40_000;
const from = (address: string) => new FakeSocket(address, nextPort++);

describe('UnauthenticatedConnections', () => {
  it('drops a connection past the bound from its address, and only from that address', () => {
    const bound = new UnauthenticatedConnections(2);
    const [a1, a2, a3] = [from('10.0.0.1'), from('10.0.0.1'), from('10.0.0.1')];
    const b1 = from('10.0.0.2');
    for (const socket of [a1, a2, a3, b1]) {
      bound.admit(socket as unknown as Socket);
    }
    expect([a1.destroyed, a2.destroyed, a3.destroyed, b1.destroyed]).toEqual([
      false,
      false,
      true,
      false,
    ]);
    expect(bound.count('10.0.0.1')).toBe(2);
    expect(bound.count('10.0.0.2')).toBe(1);
  });

  it('frees a place when a connection closes or authenticates, once', () => {
    const bound = new UnauthenticatedConnections(2);
    const [a1, a2] = [from('10.0.0.1'), from('10.0.0.1')];
    bound.admit(a1 as unknown as Socket);
    bound.admit(a2 as unknown as Socket);
    a1.emit('close');
    expect(bound.count('10.0.0.1')).toBe(1);
    bound.authenticated(a2);
    expect(bound.count('10.0.0.1')).toBe(0);
    // The authenticated socket's own close later changes nothing.
    a2.emit('close');
    const [a3, a4, a5] = [from('10.0.0.1'), from('10.0.0.1'), from('10.0.0.1')];
    for (const socket of [a3, a4, a5]) {
      bound.admit(socket as unknown as Socket);
    }
    expect([a3.destroyed, a4.destroyed, a5.destroyed]).toEqual([false, false, true]);
  });

  it("forgets a closed socket's port only while that port is still its own", () => {
    const bound = new UnauthenticatedConnections(5);
    const first = new FakeSocket('10.0.0.1', 50_000);
    bound.admit(first as unknown as Socket);
    bound.authenticated(first);
    // The port comes back on a new connection before the first one's close is seen.
    const second = new FakeSocket('10.0.0.1', 50_000);
    bound.admit(second as unknown as Socket);
    first.emit('close');
    expect(bound.count('10.0.0.1')).toBe(1);
    second.emit('close');
    expect(bound.count('10.0.0.1')).toBe(0);
  });

  it('counts nothing with no bound (0), and ignores a socket already reset', () => {
    const off = new UnauthenticatedConnections(0);
    const sockets = Array.from({ length: 10 }, () => from('10.0.0.1'));
    sockets.forEach((socket) => off.admit(socket as unknown as Socket));
    expect(sockets.some((socket) => socket.destroyed)).toBe(false);
    expect(off.count('10.0.0.1')).toBe(0);

    const bound = new UnauthenticatedConnections(1);
    const reset = new FakeSocket(undefined, undefined);
    bound.admit(reset as unknown as Socket);
    expect(reset.destroyed).toBe(false);
    expect(bound.count('10.0.0.1')).toBe(0);
  });
});
