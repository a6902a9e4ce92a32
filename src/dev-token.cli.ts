/**
 * Prints a dev access token signed with the server's JWT_SECRET:
 *   JWT_SECRET=... npm run token -- alice [--name Alice] [--ttl 3600]
 */
import { JwtService } from '@nestjs/jwt';
import { ConfigError, DEV_TOKEN_MAX_TTL_S, loadConfig, signDevToken } from '@switchboard/nest';

async function main(argv: string[]): Promise<void> {
  const [userId, ...rest] = argv;
  const flag = (name: string): string | undefined => {
    const index = rest.indexOf(`--${name}`);
    return index >= 0 ? rest[index + 1] : undefined;
  };
  if (!userId || userId.startsWith('-')) {
    throw new Error('usage: npm run token -- <userId> [--name <display name>] [--ttl <seconds>]');
  }
  if (!process.env.JWT_SECRET) {
    throw new Error(
      'JWT_SECRET is not set: the server picks a random one per boot, so set the same JWT_SECRET for the server and this command',
    );
  }
  const config = loadConfig(process.env);
  if (config.jwt.key.kind !== 'secret') {
    throw new Error('dev tokens are HS256: unset JWT_PUBLIC_KEY / JWT_JWKS_URL');
  }
  const ttl = flag('ttl') === undefined ? undefined : Number(flag('ttl'));
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1 && ttl <= DEV_TOKEN_MAX_TTL_S)) {
    throw new Error(`--ttl must be a whole number of seconds from 1 to ${DEV_TOKEN_MAX_TTL_S}`);
  }
  const token = await signDevToken(
    new JwtService({ secret: config.jwt.key.secret }),
    { issuer: config.jwt.issuer, audience: config.jwt.audience },
    { userId, name: flag('name'), ttl },
  );
  process.stdout.write(`${token.accessToken}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message =
    error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`${message}\n`);
  process.exit(1);
});
