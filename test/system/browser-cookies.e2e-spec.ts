import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import WebSocket from 'ws';
import { type RoomMessage, SwitchboardClient } from '@switchboard/client';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { launchChromium } from '../support/browser';
import { hsToken } from '../support/jwt';
import { freePort } from '../support/redis';

const STATE = '[data-testid="state"]';

/**
 * Cookie sessions in real headless Chromium, with the demo page: a page signed in by the
 * application's own HttpOnly cookie (`AUTH_COOKIE`), and guests (`ANONYMOUS`). In neither does the
 * page hold a credential.
 */
describe('cookie sessions and guests in Chromium', () => {
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const apps: TestApp[] = [];
  const clients: SwitchboardClient[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    clients.forEach((client) => client.close());
    await Promise.all(contexts.map((context) => context.close()));
    await browser?.close();
    await Promise.all(apps.map((app) => app.close()));
  });

  /** An embedded server on a port of its own, its page's origin allowed. */
  async function start(env: Record<string, string>): Promise<TestApp> {
    const port = await freePort();
    const app = await startApp(
      { ALLOWED_ORIGINS: `http://127.0.0.1:${port}`, CONNECT_ATTEMPTS_PER_MINUTE: '100', ...env },
      { port },
    );
    apps.push(app);
    return app;
  }
  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext();
    contexts.push(context);
    return context;
  }
  /** A user of the application in Node, with a Bearer token: the other member of a room. */
  async function member(app: TestApp, sub: string, name: string): Promise<SwitchboardClient> {
    const token = await hsToken({ sub, name });
    const client = new SwitchboardClient({
      url: app.http,
      getAccessToken: () => token,
      WebSocket,
      transports: ['websocket'],
    });
    clients.push(client);
    client.connect();
    return client;
  }
  async function joinRoom(on: Page, room: string): Promise<void> {
    await on.fill('#room', room);
    await on.click('#join button');
    await on.waitForSelector(`#room-title:text("# ${room}")`);
  }
  async function say(on: Page, text: string): Promise<void> {
    await on.fill('#text', text);
    await on.click('#send button');
    await on.waitForSelector(`#messages li .text:text-is("${text}")`);
  }
  const members = (on: Page) => on.locator('#members li').allTextContents();
  /** The answer to the page's next ticket request: how its cookie session went. */
  const ticketAnswer = (on: Page): Promise<Response> =>
    on.waitForResponse((response) => new URL(response.url()).pathname === '/auth/ws-ticket', {
      timeout: 5_000,
    });

  it('signs the page in with the application’s HttpOnly cookie (AUTH_COOKIE), with no token in the page, until the session is revoked', async () => {
    const app = await start({ AUTH_COOKIE: 'session' });
    const token = await hsToken({ sub: 'carla', name: 'Carla Cookie', sid: 's-carla' });
    const context = await newContext();
    await context.addCookies([
      { name: 'session', value: token, url: app.http, httpOnly: true, sameSite: 'Lax' },
    ]);
    const page = await context.newPage();
    const ticketRequests: Array<Record<string, string>> = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/auth/ws-ticket') {
        ticketRequests.push(request.headers());
      }
    });
    const sockets: Array<{ closed: boolean }> = [];
    page.on('websocket', (socket) => {
      const seen = { closed: false };
      sockets.push(seen);
      socket.on('close', () => (seen.closed = true));
    });

    await page.goto(`${app.http}/`);
    await page.waitForSelector(`${STATE}[data-state="open"]`);
    await page.waitForSelector('#room-title:text("# lobby")');
    expect(await page.textContent('#who')).toBe('Carla Cookie (carla)');
    expect(await page.isVisible('#signin')).toBe(false);
    // The server offers no guests here: the sign-in form (were it shown) would not either.
    expect(await page.locator('#guest-submit').isHidden()).toBe(true);
    // The cookie went by itself: no Authorization, and nothing the page's script can read.
    expect(ticketRequests.length).toBeGreaterThanOrEqual(1);
    expect(ticketRequests.every((headers) => headers.authorization === undefined)).toBe(true);
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(String(await page.evaluate('JSON.stringify(sessionStorage)'))).not.toContain(token);

    // It joins a room and hears another member there.
    const dora = await member(app, 'dora', 'Dora');
    await dora.join('cookie-room');
    await joinRoom(page, 'cookie-room');
    await page.locator('#members li', { hasText: 'Dora' }).waitFor();
    expect((await members(page)).sort()).toEqual(['Carla Cookie (you)', 'Dora']);
    dora.message('cookie-room', 'hello, cookie');
    await page.waitForSelector('#messages li .text:text-is("hello, cookie")');
    await say(page, 'hello, Dora');

    // The session is revoked (logout with the same token): the socket closes, the page signs out.
    const logout = await fetch(`${app.http}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(logout.status).toBe(204);
    await page.waitForSelector('#signin', { timeout: 5_000 });
    expect(await page.textContent(STATE)).toBe('signed out');
    expect(await page.textContent('#banner-text')).toBe('You were signed out.');
    expect(await page.isVisible('#chat')).toBe(false);
    await waitUntil(() => sockets.length > 0 && sockets.every((socket) => socket.closed), 'closed');

    // The revoked cookie signs nobody in again.
    const [retried] = await Promise.all([ticketAnswer(page), page.reload()]);
    expect(retried.status()).toBe(401);
    expect(await page.isVisible('#signin')).toBe(true);
    expect(await page.textContent(STATE)).toBe('signed out');
  }, 60_000);

  it('lets a visitor continue as a guest: allowed rooms only, shown as a guest, kept across a reload and between tabs, until sign-out', async () => {
    // Every frame counts against a guest's limit (5 per 10 s by default): joining two rooms with
    // their history, typing and a message would already be over it.
    const app = await start({
      ANONYMOUS: 'true',
      ANONYMOUS_ROOMS: 'lobby,guest-*',
      ANONYMOUS_MESSAGES_PER_WINDOW: '100',
    });
    const bruno = await member(app, 'bruno', 'Bruno');
    const heard: RoomMessage[] = [];
    bruno.onEvent<RoomMessage>('room.message', (message) => heard.push(message));
    await bruno.join('guest-room');

    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${app.http}/`);
    await page.locator('#guest-submit').waitFor();
    expect(await page.textContent('#guest-submit')).toBe('Continue as guest');
    await page.fill('#name', 'Ada');
    await page.click('#guest-submit');
    await page.waitForSelector(`${STATE}[data-state="open"]`);
    await page.waitForSelector('#room-title:text("# lobby")');
    expect(await page.textContent('#who')).toBe('Ada (guest)');
    const cookies = await context.cookies(app.http);
    const cookie = cookies.find(({ name }) => name === 'switchboard_anon');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(await page.evaluate('document.cookie')).toBe('');

    // An allowed room: the authenticated member is in its presence, and sees the guest.
    await joinRoom(page, 'guest-room');
    await page.locator('#members li', { hasText: 'Bruno' }).waitFor();
    expect((await members(page)).sort()).toEqual(['Ada (guest, you)', 'Bruno']);
    await waitUntil(
      () => bruno.members('guest-room').some((user) => user.id.startsWith('anon:')),
      'Bruno to see the guest',
    );
    const guest = bruno.members('guest-room').find((user) => user.id.startsWith('anon:'))!;
    expect(guest.name).toBe('Ada');
    await say(page, 'hello from a guest');
    await waitUntil(() => heard.some((m) => m.text === 'hello from a guest'), 'Bruno to hear Ada');
    expect(heard.find((m) => m.text === 'hello from a guest')?.from).toEqual(guest);
    bruno.message('guest-room', 'welcome, Ada');
    await page.waitForSelector('#messages li .text:text-is("welcome, Ada")');

    // Another guest sees Ada as a guest, in the member list and on her messages.
    const other = await (await newContext()).newPage();
    await other.goto(`${app.http}/`);
    await other.fill('#name', 'Grace');
    await other.click('#guest-submit');
    await other.waitForSelector('#room-title:text("# lobby")');
    await joinRoom(other, 'guest-room');
    await other.locator('#members li', { hasText: 'Ada (guest)' }).waitFor();
    expect((await members(other)).sort()).toEqual(['Ada (guest)', 'Bruno', 'Grace (guest, you)']);
    await say(page, 'hi Grace');
    const fromAda = other.locator('#messages li.message', {
      has: other.locator('.text:text-is("hi Grace")'),
    });
    await fromAda.waitFor();
    expect(await fromAda.locator('.from').textContent()).toBe('Ada (guest)');

    // A room outside ANONYMOUS_ROOMS is refused.
    await page.fill('#room', 'staff-only');
    await page.click('#join button');
    await page.waitForSelector('#banner:visible');
    expect(await page.textContent('#banner-text')).toMatch(/^Could not join staff-only: /);
    expect(await page.locator('#rooms li[data-room="staff-only"]').count()).toBe(0);

    // A reload keeps the guest: the same identity, in the rooms it had open.
    await page.reload();
    await page.waitForSelector(`${STATE}[data-state="open"]`);
    await page.waitForSelector('#room-title:text("# guest-room")');
    expect(await page.textContent('#who')).toBe('Ada (guest)');
    expect(await page.isVisible('#signin')).toBe(false);
    await page.locator(`#members li[data-user-id="${guest.id}"]`).waitFor();
    expect(await page.textContent(`#members li[data-user-id="${guest.id}"]`)).toBe(
      'Ada (guest, you)',
    );

    // A second tab of the browser is the same guest, on the first tab's connection.
    const tab = await context.newPage();
    const tabSockets: string[] = [];
    tab.on('websocket', (socket) => tabSockets.push(socket.url()));
    await tab.goto(`${app.http}/`);
    await tab.waitForSelector(`${STATE}[data-state="open"]`);
    expect(await tab.textContent('#who')).toBe('Ada (guest)');
    await tab.waitForSelector('[data-testid="transport"]:text("via another tab")');
    expect(tabSockets).toEqual([]);
    await tab.close();

    // Signing out clears the cookie and revokes the identity: the others see the guest go.
    await page.click('#signout');
    await page.waitForSelector('#signin');
    expect(await page.textContent(STATE)).toBe('signed out');
    await waitUntil(
      () => !bruno.members('guest-room').some((user) => user.id === guest.id),
      'the guest to leave the room',
    );
    await waitUntil(
      async () =>
        !(await context.cookies(app.http)).some(({ name }) => name === 'switchboard_anon'),
      'the guest cookie to be cleared',
    );
    const [tried] = await Promise.all([ticketAnswer(page), page.reload()]);
    expect(tried.status()).toBe(401);
    expect(await page.isVisible('#signin')).toBe(true);
    expect(await page.isVisible('#chat')).toBe(false);
    expect(await page.textContent(STATE)).toBe('signed out');
  }, 90_000);
});
