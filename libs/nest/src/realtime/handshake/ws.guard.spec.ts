import type { IncomingMessage } from 'node:http';
import { CloseCode } from '@switchboard/protocol';
import { signDevToken } from '../../auth/dev-token.service';
import { unitKit } from '../../../../../test/support/unit-kit';
import { StoreUnavailableError } from '../../common/errors';
import { type HandshakeDecision, WsGuard } from './ws.guard';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function request(
  url: string,
  headers: Record<string, string> = {},
  ip = '10.1.1.1',
): IncomingMessage {
  return {
    url,
    method: 'GET',
    headers: {
      upgrade: 'websocket',
      'sec-websocket-key': KEY,
      'sec-websocket-version': '13',
      ...headers,
    },
    socket: { remoteAddress: ip },
  } as unknown as IncomingMessage;
}

/** The handshake decision of every row, in order, with the real in-memory collaborators. */
describe('WsGuard', () => {
  const kit = unitKit({
    MAX_CONNECTIONS_PER_IP: '2',
    CONNECT_ATTEMPTS_PER_MINUTE: '2',
    ALLOWED_ORIGINS: 'https://app.example.com',
  });
  const guard = new WsGuard(
    kit.config,
    kit.hub,
    kit.gate,
    kit.tickets,
    kit.auth,
    kit.limiter,
    kit.lease,
    kit.cookies,
  );
  afterAll(() => kit.dispose());

  const token = async (userId: string, ttl?: number) =>
    (await signDevToken(kit.jwt, {}, { userId, ttl })).accessToken;
  const ticketFor = async (userId: string) =>
    (await kit.tickets.issue(await kit.auth.authenticate(await token(userId)))).ticket;
  const outcome = (decision: HandshakeDecision) => {
    if (decision.kind !== 'reject') {
      decision.admission.release();
    }
    if (decision.kind === 'accept') {
      decision.pass.release();
    }
    return decision.kind === 'reject'
      ? `reject ${decision.status}`
      : decision.kind === 'close'
        ? `close ${decision.code}`
        : 'accept';
  };

  it.each([
    ['another path', '/other?ticket=x', {}, 'reject 404'],
    ['a malformed key', '/ws?ticket=x', { 'sec-websocket-key': 'abc' }, 'reject 400'],
    ['a foreign origin', '/ws?ticket=x', { origin: 'https://evil.test' }, 'reject 403'],
    ['no credentials', '/ws', {}, `close ${CloseCode.Unauthorized}`],
    ['a token in the URL', '/ws?token=abc', {}, `close ${CloseCode.Unauthorized}`],
    ['an unknown ticket', `/ws?ticket=${'A'.repeat(43)}`, {}, `close ${CloseCode.Unauthorized}`],
  ])('%s: %s', async (_, url, headers, expected) => {
    expect(outcome(await guard.check(request(url, headers)))).toBe(expected);
  });

  it('accepts a ticket once, from an allowed origin, and closes the reuse with 4001', async () => {
    const ticket = await ticketFor('ann');
    const headers = { origin: 'https://app.example.com' };
    expect(outcome(await guard.check(request(`/ws?ticket=${ticket}`, headers)))).toBe('accept');
    expect(outcome(await guard.check(request(`/ws?ticket=${ticket}`, headers)))).toBe(
      `close ${CloseCode.Unauthorized}`,
    );
  });

  it('counts connect attempts per user: the third in a minute closes with 4029', async () => {
    const decisions = [];
    for (let i = 0; i < 3; i++) {
      decisions.push(outcome(await guard.check(request(`/ws?ticket=${await ticketFor('ben')}`))));
    }
    expect(decisions).toEqual(['accept', 'accept', `close ${CloseCode.TooManyAttempts}`]);
  });

  it('gives a redeemed ticket back when a later check finds its store unavailable (503)', async () => {
    let limiterDown = true;
    const flakyLimiter = {
      hit: (key: string, limit: number, windowMs: number) =>
        limiterDown
          ? Promise.reject(new StoreUnavailableError('rate limit'))
          : kit.limiter.hit(key, limit, windowMs),
    } as typeof kit.limiter;
    const flakyGuard = new WsGuard(
      kit.config,
      kit.hub,
      kit.gate,
      kit.tickets,
      kit.auth,
      flakyLimiter,
      kit.lease,
      kit.cookies,
    );
    const ticket = await ticketFor('eve');
    const decision = await flakyGuard.check(request(`/ws?ticket=${ticket}`, {}, '10.7.7.7'));
    expect(outcome(decision)).toBe('reject 503');
    limiterDown = false;
    const retried = await flakyGuard.check(request(`/ws?ticket=${ticket}`, {}, '10.7.7.7'));
    expect(retried.kind === 'accept' && retried.session.userId).toBe('eve');
    expect(retried.kind === 'accept' && 'ticketExpiresAt' in retried.session).toBe(false);
    expect(outcome(retried)).toBe('accept');
    expect(outcome(await flakyGuard.check(request(`/ws?ticket=${ticket}`, {}, '10.7.7.7')))).toBe(
      `close ${CloseCode.Unauthorized}`,
    );
  });

  it('refuses past MAX_CONNECTIONS_PER_IP (handshakes in flight count) and while draining', async () => {
    const held = [
      await guard.check(request(`/ws?ticket=${await ticketFor('cat')}`, {}, '10.9.9.9')),
      await guard.check(request(`/ws?ticket=${await ticketFor('dan')}`, {}, '10.9.9.9')),
    ];
    expect(held.map((d) => d.kind)).toEqual(['accept', 'accept']);
    expect(outcome(await guard.check(request('/ws', {}, '10.9.9.9')))).toBe('reject 429');
    held.forEach((decision) => decision.kind !== 'reject' && decision.admission.release());
    kit.hub.startDraining();
    expect(outcome(await guard.check(request('/ws', {}, '10.9.9.8')))).toBe('reject 503');
  });
});
