import { sanitizeText } from './sanitize';

describe('sanitizeText', () => {
  it('removes C0/C1 controls but keeps newline and tab', () => {
    expect(sanitizeText('a\u0000b\u0007c\u001bd\u007fe\u0085f\ng\th\r')).toBe('abcdef\ng\th');
  });
  it('removes bidi overrides and isolates', () => {
    expect(sanitizeText('invoice\u202Efdp.exe')).toBe('invoicefdp.exe');
    expect(sanitizeText('\u2066x\u2069\u202Ay\u202C')).toBe('xy');
  });
  it('NFC-normalizes and leaves markup alone', () => {
    expect(sanitizeText('e\u0301')).toBe('\u00e9');
    expect(sanitizeText('<img src=x onerror=alert(1)>')).toBe('<img src=x onerror=alert(1)>');
  });
});
