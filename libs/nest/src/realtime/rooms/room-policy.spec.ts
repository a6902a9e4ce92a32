import type { Session } from '../../core/session';
import { ClaimsRoomPolicy, globMatches } from './room-policy';

const session = (rooms: string[] | null): Session => ({
  userId: 'u',
  name: 'u',
  sessionId: 's',
  expiresAt: 0,
  rooms,
});

describe('ClaimsRoomPolicy', () => {
  const policy = new ClaimsRoomPolicy();
  it('allows any room without a rooms claim', () => {
    expect(policy.canJoin(session(null), 'anything')).toBe(true);
  });
  it('allows only rooms matching the claim’s globs', () => {
    const s = session(['team-42:*', 'lobby', 'desk-?']);
    expect(policy.canJoin(s, 'team-42:general')).toBe(true);
    expect(policy.canJoin(s, 'lobby')).toBe(true);
    expect(policy.canJoin(s, 'desk-7')).toBe(true);
    expect(policy.canJoin(s, 'desk-77')).toBe(false);
    expect(policy.canJoin(s, 'team-43:general')).toBe(false);
    expect(policy.canJoin(s, 'lobby2')).toBe(false);
  });
  it('treats regex characters in patterns literally and an empty claim as nothing', () => {
    expect(globMatches('a.b', 'axb')).toBe(false);
    expect(globMatches('a.b', 'a.b')).toBe(true);
    expect(globMatches('(x|y)+', 'x')).toBe(false);
    expect(policy.canJoin(session([]), 'lobby')).toBe(false);
  });
});

describe('globMatches', () => {
  it.each([
    ['*', '', true],
    ['*', 'anything', true],
    ['', '', true],
    ['', 'a', false],
    ['?', '', false],
    ['a*', 'a', true],
    ['*a', 'ba', true],
    ['*a', 'ab', false],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXbYcZ', false],
    ['a**b', 'ab', true],
    ['*?', 'x', true],
    ['?*?', 'x', false],
    ['team-*:general', 'team-42:general', true],
    ['team-*:general', 'team-42:random', false],
    ['*ab*ab', 'xabyabab', true],
    ['*a*a*a*a*a*a*a*b', 'a'.repeat(64), false],
    ['*a*a*a*a*a*a*a*b', `${'a'.repeat(63)}b`, true],
  ])('%s against %s is %s', (glob, text, expected) => {
    expect(globMatches(glob, text)).toBe(expected);
  });
});
