import { CloseCode } from '@switchboard/protocol';
import { startApp } from '../support/app';
import { connected, TestClient, within } from '../support/ws-client';

describe('logs (docs/operations.md, Metrics)', () => {
  it('log accepts and closes as JSON lines, and never a ticket, token, Authorization or Cookie', async () => {
    const app = await startApp({ LOG_LEVEL: 'trace' });
    const secrets: string[] = [];
    try {
      const token = await app.devToken('logger', { name: 'Log Ger' });
      secrets.push(token, ...token.split('.'));
      const { ticket, url } = await app.ticket(token);
      secrets.push(ticket);
      const client = await connected(url, { headers: { cookie: 'session=cookie-secret-value' } });
      secrets.push('cookie-secret-value');
      client.send({ type: 'ping' });
      await client.nextOfType('pong');

      // Refused handshakes that carry secrets in the URL or headers.
      const queryToken = new TestClient(`${app.ws}?token=${token}`);
      expect((await within(queryToken.closed, 'close')).code).toBe(CloseCode.Unauthorized);
      const reused = new TestClient(url);
      expect((await within(reused.closed, 'close')).code).toBe(CloseCode.Unauthorized);
      const badBearer = new TestClient(app.ws, {
        headers: { authorization: `Bearer ${token}broken` },
      });
      expect((await within(badBearer.closed, 'close')).code).toBe(CloseCode.Unauthorized);
      const rejected = await fetch(`${app.http}/auth/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}broken`, cookie: 'session=cookie-secret-value' },
      });
      expect(rejected.status).toBe(401);

      const logout = await fetch(`${app.http}/auth/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(logout.status).toBe(204);
      expect((await within(client.closed, 'logout close')).code).toBe(CloseCode.SessionRevoked);
      await new Promise((resolve) => setTimeout(resolve, 50));

      const lines = app.logs.parsed();
      const accepted = lines.find((line) => line.msg === 'connection accepted');
      const closed = lines.find((line) => line.msg === 'connection closed');
      expect(accepted).toMatchObject({
        level: 'info',
        connectionId: expect.any(String),
        userId: 'logger',
        ip: '127.0.0.1',
      });
      expect(closed).toMatchObject({
        connectionId: accepted?.connectionId,
        userId: 'logger',
        ip: '127.0.0.1',
        code: CloseCode.SessionRevoked,
        durationMs: expect.any(Number),
      });
      expect(lines.some((line) => line.msg === 'handshake refused' && line.level === 'debug')).toBe(
        true,
      );
    } finally {
      await app.close();
    }
    const text = app.logs.text;
    expect(text.length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/ticket=/i);
    expect(text).not.toMatch(/bearer /i);
  });
});
