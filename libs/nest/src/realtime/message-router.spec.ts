import { parseEnvelope } from './message-router';

const errorOf = (text: string) => {
  const result = parseEnvelope(text);
  if (result.ok) {
    throw new Error('expected an error');
  }
  return {
    code: result.error.code,
    id: result.id,
    details: result.error.details as { fields: Record<string, string[]> } | undefined,
  };
};

describe('parseEnvelope', () => {
  it('accepts { type, id?, data? }', () => {
    expect(parseEnvelope('{"type":"ping"}')).toEqual({ ok: true, message: { type: 'ping' } });
    expect(parseEnvelope('{"type":"room.join","id":"1","data":{"room":"a"}}')).toEqual({
      ok: true,
      message: { type: 'room.join', id: '1', data: { room: 'a' } },
    });
  });

  it.each([
    ['nope', 'bad_json'],
    ['', 'bad_json'],
    ['[1,2]', 'bad_envelope'],
    ['"ping"', 'bad_envelope'],
    ['null', 'bad_envelope'],
    ['{"id":"1"}', 'bad_envelope'],
    ['{"type":5}', 'bad_envelope'],
    ['{"type":""}', 'bad_envelope'],
    ['{"type":"ping","data":[1]}', 'bad_envelope'],
    ['{"type":"ping","data":"x"}', 'bad_envelope'],
    [`{"type":"ping","id":"${'x'.repeat(65)}"}`, 'bad_envelope'],
    ['{"type":"ping","__proto__":{"admin":true}}', 'bad_envelope'],
    ['{"type":"ping","extra":1}', 'bad_envelope'],
  ])('answers %s with %s', (text, code) => {
    expect(errorOf(text).code).toBe(code);
  });

  it('names the offending field and keeps a usable id', () => {
    const error = errorOf('{"type":"ping","id":"7","constructor":1}');
    expect(error.id).toBe('7');
    expect(Object.keys(error.details?.fields ?? {})).toEqual(['constructor']);
  });
});
