import type { ExecutionContext } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { BearerChallengeException } from '../common/errors';
import { NotFoundException } from '@nestjs/common';
import { BroadcastApiKeyGuard } from './broadcast-api-key.guard';

const KEY = 'k'.repeat(32);

function guard(key: string | undefined): BroadcastApiKeyGuard {
  return new BroadcastApiKeyGuard(Object.assign(new AppConfig(), { broadcastApiKey: key }));
}

function request(authorization?: string): ExecutionContext {
  const req = { headers: authorization === undefined ? {} : { authorization } };
  return {
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
}

/** The guard alone decides, on any adapter: a host without the Fastify hook is protected too. */
describe('BroadcastApiKeyGuard', () => {
  it('lets exactly `Bearer <key>` through', () => {
    expect(guard(KEY).canActivate(request(`Bearer ${KEY}`))).toBe(true);
    expect(guard(KEY).canActivate(request(`bearer   ${KEY}`))).toBe(true);
  });

  it.each([
    ['no header', undefined],
    ['another key of the same length', `Bearer ${'x'.repeat(32)}`],
    ['the key with a suffix', `Bearer ${KEY}x`],
    ['the key without the scheme', KEY],
    ['another scheme', `Basic ${KEY}`],
  ])('refuses %s with a Bearer challenge', (_, authorization) => {
    expect(() => guard(KEY).canActivate(request(authorization))).toThrow(BearerChallengeException);
  });

  it('answers 404, as for an unknown route, while no key is configured', () => {
    for (const authorization of [undefined, 'Bearer ', 'Bearer undefined']) {
      expect(() => guard(undefined).canActivate(request(authorization))).toThrow(NotFoundException);
    }
  });
});
