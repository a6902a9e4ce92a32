import { validateSync } from 'class-validator';
import { MAX_TEXT_LENGTH, RoomMessageData } from './client-messages.dto';
import { validateData } from './validate';

/** What class-validator alone says of `input` as a RoomMessageData. */
function decoratorsAccept(input: Record<string, unknown>): boolean {
  return validateSync(Object.assign(new RoomMessageData(), input)).length === 0;
}

const rooms: unknown[] = [
  'lobby',
  'team-42:general',
  'a',
  'A'.repeat(64),
  'A'.repeat(65),
  '',
  '-lobby',
  'lob by',
  'lobby\n',
  'ünïcode',
  5,
  null,
  ['lobby'],
  { room: 'lobby' },
];
const texts: unknown[] = [
  'hello',
  'x',
  '',
  ' ',
  'x'.repeat(MAX_TEXT_LENGTH),
  'x'.repeat(MAX_TEXT_LENGTH + 1),
  '👋',
  '👋'.repeat(MAX_TEXT_LENGTH / 2),
  '👋'.repeat(MAX_TEXT_LENGTH / 2 + 1),
  'x' + '👋'.repeat(MAX_TEXT_LENGTH / 2),
  '\uFE0F',
  '\uFE0F\uFE0F',
  '\uFE0Fx',
  '\uD800',
  'x\uD800',
  '<img src=x onerror=alert(1)>',
  42,
  null,
  undefined,
  { text: 'hi' },
];

describe('RoomMessageData.accepts, the quick path of room.message validation', () => {
  const cases = rooms.flatMap((room) => texts.map((text) => ({ room, text })));

  it.each(cases.map((input) => [JSON.stringify(input).slice(0, 60), input] as const))(
    'accepts %s only where the decorators do',
    (_, input) => {
      if (RoomMessageData.accepts(input)) {
        expect(decoratorsAccept(input)).toBe(true);
      }
    },
  );

  // The quick path may leave a valid message to the full validation (4,000 characters of emoji
  // are 8,000 UTF-16 units), never the other way round.
  it('takes the quick path for ordinary chat messages', () => {
    const ordinary = cases.filter(
      ({ room, text }) =>
        decoratorsAccept({ room, text }) && typeof text === 'string' && /^[\x20-\x7e]+$/.test(text), // plain text: UTF-16 units are characters
    );
    expect(ordinary.length).toBeGreaterThan(10);
    expect(ordinary.filter((input) => !RoomMessageData.accepts(input))).toEqual([]);
  });

  it('gives the same answer through validateData either way, errors named by the decorators', () => {
    for (const input of cases) {
      const result = validateData(RoomMessageData, input as Record<string, unknown>);
      expect([input, result.ok]).toEqual([input, decoratorsAccept(input)]);
      if (!result.ok) {
        expect(Object.keys(result.fields).length).toBeGreaterThan(0);
      }
    }
  });
});
