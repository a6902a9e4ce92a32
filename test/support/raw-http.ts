import { connect } from 'node:net';

/**
 * Ways to write the broadcast route's path that a router may decode or normalise to
 * `/api/broadcast` while the text differs. `PORT` is replaced by the app's port.
 */
export const BROADCAST_PATH_SPELLINGS = [
  '/api/broadcast',
  '/api/%62roadcast',
  '/%61pi/broadcast',
  '/api%2Fbroadcast',
  '/api/broadcast#x',
  '/api/broadcast?x=1',
  '/api/broadcast/',
  '/api/broadcast;x',
  '/API/BROADCAST',
  '//api/broadcast',
  '/api//broadcast',
  '/api/./broadcast',
  '/x/../api/broadcast',
  '/api/broadcast%00',
  '/api/broadcast%20',
  'http://127.0.0.1:PORT/api/broadcast',
  'http://evil.example/api/broadcast',
];

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/**
 * One HTTP/1.1 request written byte for byte over TCP, for request targets no HTTP client sends as
 * given (percent-encoded letters, fragments, the absolute form): `fetch` would normalise them.
 * Resolves with the answer once the server closes the connection (`Connection: close`).
 */
export function rawHttp(
  port: number,
  request: { method: string; target: string; headers?: Record<string, string>; body?: string },
  timeoutMs = 5000,
): Promise<RawResponse> {
  const body = request.body ?? '';
  const lines = [
    `${request.method} ${request.target} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Connection: close',
    ...Object.entries(request.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
    ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []),
  ];
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${request.method} ${request.target} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split >= 0 ? text.slice(0, split) : text;
      resolve({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
        head,
        body: split >= 0 ? text.slice(split + 4) : '',
      });
    });
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}
