/** JSON bodies nested deeper than this are refused with 400 before anything walks them. */
export const MAX_JSON_DEPTH = 32;
/** The largest JSON body Switchboard's routes take. */
export const JSON_BODY_LIMIT_BYTES = 16 * 1024;

/**
 * Whether the JSON text nests objects and arrays deeper than `maxDepth`, found in one pass over
 * the bytes without parsing. Deep nesting is refused before anything recursive (validation,
 * transformation) walks it: 5,000 levels overflowed the stack of Nest's validation pipe.
 */
export function jsonTooDeep(json: Buffer, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const byte = json[i];
    if (inString) {
      if (byte === BACKSLASH) {
        i++;
      } else if (byte === QUOTE) {
        inString = false;
      }
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > maxDepth) {
        return true;
      }
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether an already parsed value (a host's body parser's) nests deeper than `maxDepth`; it looks
 * no deeper than `maxDepth + 1` levels, so a deep value costs no deep recursion.
 */
export function valueTooDeep(value: unknown, maxDepth: number, depth = 1): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  if (depth > maxDepth) {
    return true;
  }
  for (const item of Object.values(value as Record<string, unknown>)) {
    if (valueTooDeep(item, maxDepth, depth + 1)) {
      return true;
    }
  }
  return false;
}
