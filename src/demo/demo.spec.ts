import { demoPage } from './demo';

describe('demoPage', () => {
  it('writes what the server offers on <body>, for the page to read under its CSP', () => {
    const html = '<!doctype html><html><head></head><body><main></main></body></html>';
    expect(demoPage(html, { devSignIn: false, guests: true, cookieSessions: true })).toBe(
      '<!doctype html><html><head></head>' +
        '<body data-dev-sign-in="false" data-guests="true" data-cookie-sessions="true">' +
        '<main></main></body></html>',
    );
  });

  it('refuses a page it cannot write them on', () => {
    expect(() =>
      demoPage('<body class="x"></body>', {
        devSignIn: true,
        guests: false,
        cookieSessions: false,
      }),
    ).toThrow('the demo page has no <body> tag for its sign-in options');
  });
});
