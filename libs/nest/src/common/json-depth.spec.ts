import { jsonTooDeep } from './json-depth';

const nested = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`;

describe('jsonTooDeep', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(jsonTooDeep(Buffer.from(nested(3)), 3)).toBe(false);
    expect(jsonTooDeep(Buffer.from(nested(4)), 3)).toBe(true);
    expect(jsonTooDeep(Buffer.from('{"a":{"b":[1]}}'), 3)).toBe(false);
    expect(jsonTooDeep(Buffer.from('{"a":{"b":[{}]}}'), 3)).toBe(true);
    expect(jsonTooDeep(Buffer.from(`{"text":"${'['.repeat(100)}"}`), 3)).toBe(false);
    expect(jsonTooDeep(Buffer.from(`{"text":"\\"${'{'.repeat(100)}"}`), 3)).toBe(false);
  });
  it('is linear on a body of any depth', () => {
    expect(jsonTooDeep(Buffer.from(nested(100_000)), 32)).toBe(true);
  });
});
