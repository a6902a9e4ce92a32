import { getMetadataStorage, validateSync } from 'class-validator';

/** Problems by field name, each with the sentences that explain them. */
export type FieldErrors = Record<string, string[]>;

/**
 * A DTO class. `accepts`, where a class has it, is a quicker test of exactly what its decorators
 * check, for the messages on the hot path: what it accepts is valid without class-validator's
 * machinery, and anything else still goes through the full validation, which names the problem.
 * (`validate.spec.ts` holds each `accepts` to the decorators' answer.)
 */
type DataClass<T> = (new () => T) & { accepts?(input: Record<string, unknown>): boolean };

const allowedKeys = new Map<DataClass<unknown>, ReadonlySet<string>>();

function keysOf(dto: DataClass<unknown>): ReadonlySet<string> {
  let keys = allowedKeys.get(dto);
  if (keys === undefined) {
    const metadata = getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false);
    keys = new Set(metadata.map((entry) => entry.propertyName));
    allowedKeys.set(dto, keys);
  }
  return keys;
}

/**
 * Validates a message's `data` against its DTO class. Unknown properties are refused before
 * anything is copied, so keys such as `__proto__` or `constructor` never reach an object.
 */
export function validateData<T extends object>(
  dto: DataClass<T>,
  data: Record<string, unknown> | undefined,
): { ok: true; value: T } | { ok: false; fields: FieldErrors } {
  const input = data ?? {};
  const allowed = keysOf(dto);
  // Entries, not assignments: `fields['__proto__'] = …` would set a prototype, not a field.
  const unknown = Object.keys(input)
    .filter((key) => !allowed.has(key))
    .map((key): [string, string[]] => [key, [`${key} is not allowed`]]);
  if (unknown.length > 0) {
    return { ok: false, fields: Object.fromEntries(unknown) };
  }
  const value = Object.assign(new dto(), input);
  if (dto.accepts?.(input) === true) {
    return { ok: true, value };
  }
  const invalid = validateSync(value, { forbidUnknownValues: false }).map(
    (error): [string, string[]] => [
      error.property,
      Object.values(error.constraints ?? { invalid: `${error.property} is invalid` }),
    ],
  );
  return invalid.length > 0
    ? { ok: false, fields: Object.fromEntries(invalid) }
    : { ok: true, value };
}
