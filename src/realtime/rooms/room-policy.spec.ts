import type { Session } from '../../auth/session';
import { ClaimsRoomPolicy, globsToRegExp } from './room-policy';

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
    expect(globsToRegExp(['a.b']).test('axb')).toBe(false);
    expect(policy.canJoin(session([]), 'lobby')).toBe(false);
  });
});
