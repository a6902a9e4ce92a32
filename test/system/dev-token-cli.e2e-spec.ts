import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startApp, TEST_SECRET } from '../support/app';

/** `npm run token`, run as a developer runs it, against a server with the same JWT_SECRET. */
describe('npm run token', () => {
  it('prints a token that the server with the same JWT_SECRET accepts', async () => {
    const token = await new Promise<string>((resolve, reject) =>
      execFile(
        'npm',
        ['run', '-s', 'token', '--', 'cli-user', '--name', 'Cli User', '--ttl', '120'],
        { env: { ...process.env, JWT_SECRET: TEST_SECRET }, cwd: join(__dirname, '..', '..') },
        (error, stdout) => (error ? reject(new Error(error.message)) : resolve(stdout.trim())),
      ),
    );
    const app = await startApp();
    try {
      expect((await app.ticket(token)).ticket).toBeTruthy();
      const [, payload] = token.split('.');
      expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).toMatchObject({
        sub: 'cli-user',
        name: 'Cli User',
      });
    } finally {
      await app.close();
    }
  });
});
