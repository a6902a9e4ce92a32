import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type TestApp } from '../support/app';
import { connected } from '../support/ws-client';

function post(
  url: string,
  ca: Buffer,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** TLS_CERT_FILE / TLS_KEY_FILE: HTTPS and WSS on the same port, with a certificate made here. */
describe('TLS', () => {
  let dir: string;
  let app: TestApp;
  let ca: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    ca = readFileSync(join(dir, 'cert.pem'));
    app = await startApp({
      TLS_CERT_FILE: join(dir, 'cert.pem'),
      TLS_KEY_FILE: join(dir, 'key.pem'),
    });
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API over HTTPS and sockets over WSS', async () => {
    const token = await post(
      `${app.http}/auth/dev-token`,
      ca,
      { 'content-type': 'application/json' },
      JSON.stringify({ userId: 'secure' }),
    );
    expect(token.status).toBe(200);
    const { accessToken } = JSON.parse(token.body) as { accessToken: string };
    const ticket = await post(`${app.http}/auth/ws-ticket`, ca, {
      authorization: `Bearer ${accessToken}`,
    });
    expect(ticket.status).toBe(201);
    const { url } = JSON.parse(ticket.body) as { url: string };
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/ws\?ticket=/);
    const client = await connected(url, { ca });
    expect(client.welcome.user.id).toBe('secure');
    client.send({ type: 'ping', id: 'tls' });
    expect((await client.nextOfType('pong')).id).toBe('tls');
    client.close();
  });

  it('refuses a client that does not trust the certificate', async () => {
    await expect(post(`${app.http}/auth/dev-token`, Buffer.from(''), {})).rejects.toThrow(
      /self[- ]signed|certificate/i,
    );
  });
});
