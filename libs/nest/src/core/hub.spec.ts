import type { WebSocket } from 'ws';
import { Connection } from './connection';
import { Hub } from './hub';

const connection = (id: string, userId: string, ip: string): Connection =>
  new Connection({
    id,
    socket: {} as WebSocket,
    session: { userId, name: userId, sessionId: `s-${userId}`, expiresAt: 0, rooms: null },
    ip,
    connectedAt: Date.now(),
    sendBufferMaxBytes: 1024,
    messagesPerWindow: 20,
    messageWindowMs: 10_000,
    metrics: { sent: () => undefined },
  });

describe('Hub admission', () => {
  it('counts handshakes in progress against MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP', () => {
    const hub = new Hub();
    const a = hub.reserve('1.1.1.1', 3, 2);
    const b = hub.reserve('1.1.1.1', 3, 2);
    expect(hub.reserve('1.1.1.1', 3, 2)).toBe('ip_limit');
    const c = hub.reserve('2.2.2.2', 3, 2);
    expect(hub.reserve('3.3.3.3', 3, 2)).toBe('capacity');
    if (typeof a === 'string' || typeof b === 'string' || typeof c === 'string') {
      throw new Error('expected admissions');
    }
    a.release();
    a.release(); // idempotent
    expect(typeof hub.reserve('1.1.1.1', 3, 2)).toBe('object');
  });

  it('keeps the IP place of an admitted connection until it is removed', () => {
    const hub = new Hub();
    const admission = hub.reserve('1.1.1.1', 10, 1);
    if (typeof admission === 'string') {
      throw new Error('expected an admission');
    }
    const held = connection('c1', 'u1', '1.1.1.1');
    hub.add(held, admission);
    expect(hub.reserve('1.1.1.1', 10, 1)).toBe('ip_limit');
    expect([...hub.ofUser('u1')]).toEqual([held]);
    expect([...hub.ofSession('s-u1')]).toEqual([held]);
    expect(hub.remove(held)).toBe(true);
    expect(hub.remove(held)).toBe(false);
    expect(hub.size).toBe(0);
    expect(hub.ofUser('u1')).toHaveLength(0);
    expect(typeof hub.reserve('1.1.1.1', 10, 1)).toBe('object');
  });
});
