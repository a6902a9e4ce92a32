import { waitUntil } from './wait';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A hand-rolled WebSocket client over a plain TCP socket, for frames that no well-behaved client
 * library will send (unmasked, reserved bits, fragmented control frames).
 */
export class RawWebSocket {
  private buffer = Buffer.alloc(0);
  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.buffer = Buffer.concat([this.buffer, chunk])));
  }

  static async open(port: number, pathAndQuery: string): Promise<RawWebSocket> {
    const socket = connect(port, '127.0.0.1');
    const raw = new RawWebSocket(socket);
    await new Promise<void>((resolve, reject) =>
      socket.once('connect', resolve).once('error', reject),
    );
    socket.write(
      [
        `GET ${pathAndQuery} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
    await waitUntil(() => raw.buffer.indexOf('\r\n\r\n') >= 0, 'the 101 response');
    const end = raw.buffer.indexOf('\r\n\r\n') + 4;
    const head = raw.buffer.subarray(0, end).toString();
    if (!head.startsWith('HTTP/1.1 101')) {
      throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`);
    }
    raw.buffer = raw.buffer.subarray(end);
    return raw;
  }

  /** Writes bytes as they are. */
  write(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.from(bytes));
  }

  /** A masked frame, as a client must send; `first` is FIN/RSV/opcode. */
  static masked(first: number, payload: Buffer): Buffer {
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
    if (payload.length >= 126) {
      throw new Error('short payloads only');
    }
    return Buffer.concat([Buffer.from([first, 0x80 | payload.length]), mask, masked]);
  }

  /** Resolves with the code of the first close frame the server sends. */
  async closeCode(timeoutMs = 5000): Promise<number> {
    let code = -1;
    await waitUntil(
      () => {
        let offset = 0;
        while (offset + 2 <= this.buffer.length) {
          const opcode = this.buffer[offset] & 0x0f;
          const length = this.buffer[offset + 1] & 0x7f;
          const header = length === 126 ? 4 : length === 127 ? 10 : 2;
          const size = length === 126 ? this.buffer.readUInt16BE(offset + 2) : length;
          if (offset + header + size > this.buffer.length) {
            return false;
          }
          if (opcode === 0x8) {
            code = this.buffer.readUInt16BE(offset + header);
            return true;
          }
          offset += header + size;
        }
        return false;
      },
      'a close frame',
      timeoutMs,
    );
    return code;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
