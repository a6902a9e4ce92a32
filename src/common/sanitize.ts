/**
 * C0 controls except tab and newline, DEL and the C1 controls, and the bidirectional embedding,
 * override and isolate characters (which can make text display differently from what it says).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g;

/** Removes unsafe control and bidi characters and NFC-normalizes. Does not HTML-escape. */
export function sanitizeText(text: string): string {
  return text.replace(UNSAFE, '').normalize('NFC');
}
