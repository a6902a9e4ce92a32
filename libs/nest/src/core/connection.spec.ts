import { CloseCode } from '@switchboard/protocol';
import { FakeSocket } from '../../../../test/support/unit-kit';
import { Connection } from './connection';

function connection(sendBufferMaxBytes: number) {
  const socket = new FakeSocket();
  const subject = new Connection({
    id: 'c1',
    socket,
    session: {
      userId: 'u',
      name: 'u',
      sessionId: 's',
      expiresAt: Date.now() + 60_000,
      rooms: null,
    },
    ip: '10.0.0.1',
    connectedAt: Date.now(),
    sendBufferMaxBytes,
    messagesPerWindow: 100,
    messageWindowMs: 10_000,
    metrics: { sent: () => undefined },
  });
  return { socket, subject };
}

describe('Connection.send and WS_SEND_BUFFER_MAX_BYTES', () => {
  // 1,000 CJK characters: 1,000 UTF-16 units, 3,000 bytes of UTF-8.
  const cjk = JSON.stringify({ type: 'x', data: '漢'.repeat(1000) });

  it('counts a string frame in bytes, as the socket buffers it', () => {
    const { socket, subject } = connection(2048);
    socket.bufferedAmount = 0;
    expect(subject.send(cjk)).toBe(false);
    expect(socket.closed).toEqual({ code: CloseCode.SlowConsumer, reason: 'slow consumer' });
  });

  it('sends what fits, whether a string or its bytes', () => {
    const { socket, subject } = connection(4096);
    expect(subject.send(cjk)).toBe(true);
    expect(subject.send(Buffer.from(cjk))).toBe(true);
    expect(socket.sent).toHaveLength(2);
    expect(socket.closed).toBeNull();
  });
});
