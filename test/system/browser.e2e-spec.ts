import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { CloseCode } from '@switchboard/protocol';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { startApp, type TestApp } from '../support/app';
import { launchChromium } from '../support/browser';
import { freePort, suiteRedis, testPrefix } from '../support/redis';
import { spawnServer } from '../support/server-process';

const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts');
const STATE = '[data-testid="state"]';

/** The demo page and the client SDK in real headless Chromium, on two instances and one Redis. */
describe('demo page in Chromium', () => {
  let browser: Browser;
  let stopRedis: () => Promise<void>;
  let env: Record<string, string>;
  let ports: [number, number];
  let a: TestApp;
  let b: TestApp;
  const contexts: BrowserContext[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    const redis = await suiteRedis();
    stopRedis = redis.stop;
    ports = [await freePort(), await freePort()];
    env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: testPrefix(),
      ALLOWED_ORIGINS: ports.map((port) => `http://127.0.0.1:${port}`).join(','),
      MAX_CONNECTIONS_PER_USER: '1',
      CONNECT_ATTEMPTS_PER_MINUTE: '100',
    };
    [a, b] = await Promise.all([
      startApp(env, { port: ports[0] }),
      startApp(env, { port: ports[1] }),
    ]);
    browser = await launchChromium();
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await Promise.all(contexts.map((context) => context.close()));
    await browser?.close();
    await Promise.all([a?.close(), b?.close()]);
    await stopRedis();
  });

  async function page(app: TestApp, viewport?: { width: number; height: number }): Promise<Page> {
    const context = await browser.newContext(viewport ? { viewport } : {});
    contexts.push(context);
    const opened = await context.newPage();
    opened.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await opened.goto(`${app.http}/`);
    return opened;
  }
  async function signIn(on: Page, name: string): Promise<void> {
    await on.fill('#name', name);
    await on.click('#signin button[type=submit]');
    await on.waitForSelector(`${STATE}[data-state="open"]`);
    await on.waitForSelector('#room-title:text("# lobby")');
  }
  const members = (on: Page) => on.locator('#members li').allTextContents();
  async function joinRoom(on: Page, room: string): Promise<void> {
    await on.fill('#room', room);
    await on.click('#join button');
    await on.waitForSelector(`#room-title:text("# ${room}")`);
  }
  async function say(on: Page, text: string): Promise<void> {
    await on.fill('#text', text);
    await on.click('#send button');
    await on.waitForSelector(`#messages li .text:text("${text}")`);
  }
  const message = (on: Page, text: string) =>
    on.locator('#messages li.message', { has: on.locator(`.text:text-is("${text}")`) });

  it('serves the page under a strict Content-Security-Policy', async () => {
    const response = await fetch(`${a.http}/`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await response.text()).not.toMatch(/<script(?![^>]*\bsrc=)/);
    const sdk = await fetch(`${a.http}/sdk/switchboard-client.js`);
    expect(sdk.headers.get('content-type')).toMatch(/javascript/);
    expect(await sdk.text()).toMatch(/export\s*\{/);
  });

  it('lets two users on two instances chat, see each other and each other typing, and renders text as text', async () => {
    const alice = await page(a);
    const bob = await page(b);
    await signIn(alice, 'Alice');
    await signIn(bob, 'Bob');
    await alice.locator('#members li').nth(1).waitFor();
    expect((await members(alice)).sort()).toEqual(['Alice (you)', 'Bob']);

    await bob.type('#text', 'hello');
    await alice.waitForSelector('#typing:text("Bob is typing…")');

    const attack = '<img src=x onerror=alert(1)>';
    await alice.fill('#text', attack);
    await alice.click('#send button');
    await bob.fill('#text', 'hi Alice 👋');
    await bob.click('#send button');
    await bob.locator('#messages li.message').nth(1).waitFor();
    const texts = await bob.locator('#messages li .text').allTextContents();
    expect(texts).toEqual([attack, 'hi Alice 👋']);
    expect(await bob.$$('#messages img')).toHaveLength(0);
    await alice.locator('#messages li.message').nth(1).waitFor();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(dialogs).toEqual([]);

    // Alice was there first: she saw Bob join, as a line of its own; every line has its time.
    expect(await alice.locator('#messages li.notice').allTextContents()).toEqual([
      expect.stringMatching(/^\d{1,2}:\d{2}.*Bob joined$/),
    ]);
    const times = (
      await Promise.all(
        (await alice.locator('#messages li time').all()).map((time) =>
          time.getAttribute('datetime'),
        ),
      )
    ).map((iso) => Date.parse(iso ?? ''));
    expect(times).toHaveLength(3);
    expect(times.every((ts) => Math.abs(Date.now() - ts) < 60_000)).toBe(true);
    await alice.screenshot({ path: join(ARTIFACTS, 'chat.png') });
  });

  it("sets your own messages apart from others', groups a sender's run of messages under one name", async () => {
    const olive = await page(a);
    const pete = await page(b);
    await signIn(olive, 'Olive Own');
    await signIn(pete, 'Pete Other');
    for (const on of [olive, pete]) {
      await joinRoom(on, 'bubbles');
    }
    // Presence comes in batches: Pete's join line reaches Olive up to a batch later, and would
    // split his run of messages if it landed between them.
    await olive.waitForSelector('#messages li.notice:has-text("Pete Other joined")');
    await say(pete, 'one');
    await say(pete, 'two');
    await olive.waitForSelector('#messages li .text:text("two")');
    await say(olive, 'mine');

    // Names kept for screen readers only are 1 px boxes (Playwright counts them as visible).
    const seen = async (name: Locator) => ((await name.boundingBox())?.width ?? 0) > 1;
    const mine = message(olive, 'mine');
    const first = message(olive, 'one');
    const second = message(olive, 'two');
    expect(await mine.getAttribute('class')).toMatch(/\bmine\b/);
    expect(await first.getAttribute('class')).toMatch(/\btheirs\b/);
    // The other user's run shows the name (and an avatar) once, on its first message.
    expect(await seen(first.locator('.from'))).toBe(true);
    expect(await first.locator('.from').textContent()).toBe('Pete Other');
    expect(await first.locator('.avatar').textContent()).toBe('PO');
    expect(await second.getAttribute('class')).toMatch(/\bcontinued\b/);
    expect(await seen(second.locator('.from'))).toBe(false);
    expect(await second.locator('.avatar').count()).toBe(0);
    expect(await seen(mine.locator('.from'))).toBe(false);
    expect(await mine.locator('time').count()).toBe(1);

    // Own bubbles on the right in the accent colour, others' on the left in another.
    const list = (await olive.locator('#messages').boundingBox())!;
    const own = (await mine.locator('.bubble').boundingBox())!;
    const theirs = (await first.locator('.bubble').boundingBox())!;
    expect(list.x + list.width - (own.x + own.width)).toBeLessThan(24);
    expect(theirs.x - list.x).toBeLessThan(48);
    expect(own.x).toBeGreaterThan(theirs.x + theirs.width);
    // (This TypeScript has no DOM types: the expression goes to the page as text.)
    const background = async (bubble: string) =>
      String(
        await olive.evaluate(
          `getComputedStyle(document.querySelector('#messages ${bubble} .bubble')).backgroundColor`,
        ),
      );
    expect(await background('li.mine')).not.toBe(await background('li.theirs'));
    await olive.screenshot({ path: join(ARTIFACTS, 'bubbles.png') });
    await olive.click('#theme');
    await olive.screenshot({ path: join(ARTIFACTS, 'bubbles-theme.png') });
  });

  it('counts unread messages in the joined rooms not open, and clears the count on opening one', async () => {
    const uma = await page(a);
    const vic = await page(b);
    await signIn(uma, 'Uma Unread');
    await signIn(vic, 'Vic');
    for (const on of [uma, vic]) {
      await joinRoom(on, 'unread-room');
    }
    await uma.click('#rooms li[data-room="lobby"] button');
    await uma.waitForSelector('#room-title:text("# lobby")');
    const badge = uma.locator('#rooms li[data-room="unread-room"] .unread');
    expect(await badge.isVisible()).toBe(false);

    await say(vic, 'first');
    await say(vic, 'second');
    await uma.waitForSelector('#rooms li[data-room="unread-room"] .unread:text("2")');
    expect(await badge.textContent()).toBe('2 unread messages');
    expect(await uma.title()).toBe('(2) Switchboard demo');
    await uma.screenshot({ path: join(ARTIFACTS, 'unread.png') });
    expect(await uma.locator('#rooms li[data-room="lobby"] .unread').isVisible()).toBe(false);
    // Vic's own messages, in the room Vic has open, are not unread for Vic.
    expect(await vic.locator('#rooms .unread:visible').count()).toBe(0);

    await uma.click('#rooms li[data-room="unread-room"] button');
    await uma.waitForSelector('#room-title:text("# unread-room")');
    expect(await badge.isVisible()).toBe(false);
    expect(await uma.title()).toBe('Switchboard demo');
    expect(await uma.locator('#messages li .text').allTextContents()).toEqual(['first', 'second']);
    expect(
      await uma.getAttribute('#rooms li[data-room="unread-room"] button', 'aria-current'),
    ).toBe('true');
  });

  it('keeps the user signed in across a reload, in the rooms they had open, until they sign out', async () => {
    const rhea = await page(a);
    await signIn(rhea, 'Rhea Reload');
    await joinRoom(rhea, 'reload-room');
    await say(rhea, 'before the reload');

    await rhea.reload();
    await rhea.waitForSelector(`${STATE}[data-state="open"]`);
    await rhea.waitForSelector('#room-title:text("# reload-room")');
    await rhea.waitForSelector('#messages li .text:text("before the reload")');
    expect(await rhea.isVisible('#signin')).toBe(false);
    expect(await rhea.textContent('#who')).toBe('Rhea Reload (rhea-reload)');
    const listed = await rhea.locator('#rooms li').all();
    expect(await Promise.all(listed.map((item) => item.getAttribute('data-room')))).toEqual([
      'lobby',
      'reload-room',
    ]);
    await rhea.locator('#members li', { hasText: 'Rhea Reload (you)' }).waitFor();

    await rhea.click('#signout');
    await rhea.waitForSelector('#signin');
    await rhea.reload();
    expect(await rhea.isVisible('#signin')).toBe(true);
    expect(await rhea.isVisible('#chat')).toBe(false);
    expect(await rhea.textContent(STATE)).toBe('signed out');
  });

  it('keeps a typing indicator that came after a message for its full time', async () => {
    // The indicator shows for 3 s. A message takes it down; the user's next typing must show for
    // 3 s again, not vanish when the timer of the typing before the message runs out.
    const erin = await page(a);
    const frank = await page(b);
    await signIn(erin, 'Erin');
    await signIn(frank, 'Frank');
    await erin.locator('#members li', { hasText: 'Frank' }).waitFor();
    await frank.type('#text', 'h');
    await erin.waitForSelector('#typing:text("Frank is typing…")');
    const firstShown = Date.now();
    await frank.fill('#text', 'hello');
    await frank.click('#send button');
    await erin.waitForSelector('#messages li .text:text("hello")');
    expect(await erin.textContent('#typing')).toBe('');
    // The server passes one typing per user and room per 2 s; the page sends one per 1.5 s.
    await new Promise((resolve) => setTimeout(resolve, firstShown + 2_200 - Date.now()));
    await frank.type('#text', 'again');
    await erin.waitForSelector('#typing:text("Frank is typing…")');
    // Past the first indicator's 3 s: the second one is still up.
    await new Promise((resolve) => setTimeout(resolve, firstShown + 3_600 - Date.now()));
    expect(await erin.textContent('#typing')).toBe('Frank is typing…');
    // …and goes when its own 3 s are up (polled from here: the page's CSP forbids eval).
    for (const deadline = Date.now() + 5_000; (await erin.textContent('#typing')) !== '';) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it('fits a phone: at 390 px wide nothing is cut off and rooms and members fold into strips', async () => {
    const phone = await page(b, { width: 390, height: 844 });
    await signIn(phone, 'Grace Hopper-Phone');
    for (const room of ['design-reviews', 'incident-42', 'random']) {
      await phone.fill('#room', room);
      await phone.click('#join button');
      await phone.waitForSelector(`#room-title:text("# ${room}")`);
    }
    await phone.fill('#text', 'a long line from a phone '.repeat(8));
    await phone.click('#send button');
    await phone.locator('#messages li.message').first().waitFor();
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    for (const selector of ['header', '#rooms', '#join', '#messages', '#send', '#members']) {
      const box = await phone.locator(selector).boundingBox();
      expect([selector, box !== null && box.x >= 0 && box.x + box.width <= 390]).toEqual([
        selector,
        true,
      ]);
    }
    for (const room of await phone.locator('#rooms li').all()) {
      const box = await room.boundingBox();
      expect(box !== null && box.x >= 0 && box.x + box.width <= 390).toBe(true);
    }
    // One column: the room strip above the conversation, the members below it.
    const rooms = (await phone.locator('#rooms').boundingBox())!;
    const conversation = (await phone.locator('#messages').boundingBox())!;
    const members = (await phone.locator('#members').boundingBox())!;
    expect(rooms.y).toBeLessThan(conversation.y);
    expect(members.y).toBeGreaterThan(conversation.y);
    await phone.screenshot({ path: join(ARTIFACTS, 'phone.png'), fullPage: true });
  });

  it('has a favicon', async () => {
    const icon = await fetch(`${a.http}/favicon.svg`);
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(await icon.text()).toMatch(/^<svg/);
    const linked = await page(a);
    expect(await linked.getAttribute('link[rel=icon]', 'href')).toBe('/favicon.svg');
  });

  it('cannot open a socket from a page served outside ALLOWED_ORIGINS, and says why', async () => {
    const outsider = await startApp({ ...env, ALLOWED_ORIGINS: 'https://app.example.com' });
    try {
      const lonely = await page(outsider);
      await lonely.fill('#name', 'Outsider');
      await lonely.click('#signin button[type=submit]');
      await lonely.waitForSelector(`${STATE}[data-state="closed"]`);
      const banner = await lonely.locator('#banner').textContent();
      expect(banner).toContain(`origin ${outsider.http} is not in ALLOWED_ORIGINS`);

      // The same socket attempt from a plain page on yet another origin.
      const foreign = await foreignPage();
      try {
        const { url } = await a.ticket(await a.devToken('foreigner'));
        const result = await foreign.page.evaluate(
          (ticketUrl) =>
            new Promise<string>((resolve) => {
              const socket = new WebSocket(ticketUrl);
              socket.onopen = () => resolve('open');
              socket.onclose = (event) => resolve(`closed ${event.code}`);
            }),
          url,
        );
        expect(result).toBe('closed 1006');
      } finally {
        foreign.server.close();
      }
    } finally {
      await outsider.close();
    }
  });

  it('recovers by itself after its server instance restarts, joins its room again and misses nothing', async () => {
    const dave = await page(b);
    await signIn(dave, 'Dave');
    await say(dave, 'said before Carol came');
    const carol = await page(a);
    await signIn(carol, 'Carol');
    // Joining shows the room's last messages.
    await carol.waitForSelector('#messages li .text:text("said before Carol came")');

    await a.close();
    await carol.waitForSelector(`${STATE}[data-state="reconnecting"]`);
    await say(dave, 'while you were away 1');
    await say(dave, 'while you were away 2');
    a = await startApp(env, { port: ports[0] });
    await carol.waitForSelector(`${STATE}[data-state="open"]`, { timeout: 15_000 });
    await carol.locator('#members li', { hasText: 'Carol (you)' }).waitFor();
    // Recovered: what was said meanwhile, once each, in order.
    await carol.waitForSelector('#messages li .text:text("while you were away 2")');
    const texts = await carol.locator('#messages li .text').allTextContents();
    expect(texts.slice(texts.indexOf('said before Carol came'))).toEqual([
      'said before Carol came',
      'while you were away 1',
      'while you were away 2',
    ]);
    // Recovered, so nothing to alarm anyone.
    expect(await carol.locator('#messages li.notice.alert').count()).toBe(0);
    await carol.fill('#text', 'back again');
    await carol.click('#send button');
    await carol.waitForSelector('#messages li .text:text("back again")');
  });

  it('says so when an embedded server restarted and lost the history, and goes on below', async () => {
    // Without Redis, history lives in the process: a restart starts every room on a new epoch.
    const port = await freePort();
    const embedded = {
      ALLOWED_ORIGINS: `http://127.0.0.1:${port}`,
      CONNECT_ATTEMPTS_PER_MINUTE: '100',
    };
    let solo: TestApp | undefined = await startApp(embedded, { port });
    try {
      const hana = await page(solo);
      await signIn(hana, 'Hana');
      await say(hana, 'before the restart');

      await solo.close();
      solo = undefined;
      await hana.waitForSelector(`${STATE}[data-state="reconnecting"]`);
      solo = await startApp(embedded, { port });
      await hana.waitForSelector(`${STATE}[data-state="open"]`, { timeout: 15_000 });
      const notice = hana.locator('#messages li.notice.alert');
      await notice.waitFor();
      const said =
        "The server restarted and this room's history was lost; new messages appear below.";
      expect(await notice.textContent()).toMatch(/^\d{1,2}:\d{2}/);
      expect(await notice.textContent()).toContain(said);
      await hana.waitForSelector(`#announce:text-is("${said}")`);
      // What the page showed stays above the notice; what is said now comes below it.
      await say(hana, 'after the restart');
      const lines = await hana
        .locator('#messages li.message .text, #messages li.notice.alert')
        .allTextContents();
      expect(lines.map((line) => (line.endsWith(said) ? said : line))).toEqual([
        'before the restart',
        said,
        'after the restart',
      ]);
      await hana.screenshot({ path: join(ARTIFACTS, 'history-lost.png') });
    } finally {
      await solo?.close();
    }
  });

  it('lists the members and the count from presence, again after a server restart, and drops a closed page', async () => {
    const room = 'presence-check';
    const alma = await page(a);
    const bert = await page(a);
    await signIn(alma, 'Alma');
    await signIn(bert, 'Bert');
    for (const on of [alma, bert]) {
      await on.fill('#room', room);
      await on.click('#join button');
      await on.waitForSelector(`#room-title:text("# ${room}")`);
    }
    /** Both members listed and counted on `on` within `timeoutMs`. */
    const seesBoth = async (on: Page, you: string, timeoutMs: number) => {
      const other = you === 'Alma' ? 'Bert' : 'Alma';
      await on.locator('#members li', { hasText: other }).waitFor({ timeout: timeoutMs });
      await on.waitForSelector('#member-count:text-is("2")', { timeout: timeoutMs });
      expect((await members(on)).sort()).toEqual([`${you} (you)`, other].sort());
    };
    await seesBoth(alma, 'Alma', 5_000);
    await seesBoth(bert, 'Bert', 5_000);

    // Both pages reconnect and rejoin; the rejoin's snapshot and the diffs after it list both
    // again, not just "you".
    await a.close();
    await alma.waitForSelector(`${STATE}[data-state="reconnecting"]`);
    await bert.waitForSelector(`${STATE}[data-state="reconnecting"]`);
    a = await startApp(env, { port: ports[0] });
    for (const on of [alma, bert]) {
      await on.waitForSelector(`${STATE}[data-state="open"]`, { timeout: 15_000 });
    }
    await seesBoth(alma, 'Alma', 3_000);
    await seesBoth(bert, 'Bert', 3_000);
    // …and it stays so: a rejoin that listed only "you" would show by now.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await seesBoth(alma, 'Alma', 500);
    await seesBoth(bert, 'Bert', 500);

    await bert.close();
    await alma.locator('#members li', { hasText: 'Bert' }).waitFor({
      state: 'detached',
      timeout: 2_500,
    });
    await alma.waitForSelector('#member-count:text-is("1")', { timeout: 1_000 });
    expect(await members(alma)).toEqual(['Alma (you)']);
    await alma.waitForSelector('#messages li.notice:text("Bert left")', { timeout: 1_000 });
  });

  it('shows "replaced" in the first tab when the same user opens a second one, and can take over', async () => {
    const first = await page(a);
    await signIn(first, 'Dave');
    const second = await page(b);
    await signIn(second, 'Dave');
    await first.waitForSelector(`${STATE}[data-state="replaced"]`);
    expect(await first.textContent('#banner-text')).toMatch(/another tab/);
    expect(await first.isVisible('#takeover')).toBe(true);
    await first.click('#takeover');
    await first.waitForSelector(`${STATE}[data-state="open"]`);
    await second.waitForSelector(`${STATE}[data-state="replaced"]`);
  });

  it('in development, works from the URL the server logs (127.0.0.1) and from localhost', async () => {
    const dev = await spawnServer({ PORT: String(await freePort()), NODE_ENV: 'development' });
    try {
      const logged = /"url":"(http:\/\/[^"]+)"/.exec(dev.lines.join('\n'))?.[1];
      expect(logged).toBe(`http://127.0.0.1:${dev.port}`);
      for (const origin of [logged, `http://localhost:${dev.port}`]) {
        const context = await browser.newContext();
        contexts.push(context);
        const opened = await context.newPage();
        await opened.goto(`${origin}/`);
        await signIn(opened, `dev-${contexts.length}`);
      }
    } finally {
      await dev.stop();
    }
  });

  it('shows when it will reconnect, counts down, and reconnects at once on "retry now"', async () => {
    const rita = await page(a);
    await signIn(rita, 'Rita Retry');
    const line = rita.locator('[data-testid="reconnect"]');
    expect(await line.isVisible()).toBe(false);

    // A drain asks for a minute's wait: the page shows it and counts down.
    await a.app
      .get(BroadcastService)
      .disconnectUser('rita-retry', CloseCode.GoingAway, 'reconnect in 60000 ms');
    await rita.waitForSelector(`${STATE}[data-state="reconnecting"]`);
    await line.waitFor();
    const seconds = async () => Number(await rita.textContent('#reconnect-in'));
    const first = await seconds();
    expect(first).toBeGreaterThanOrEqual(59);
    expect(first).toBeLessThanOrEqual(61);
    expect(await line.textContent()).toMatch(/reconnecting in \d+ s\s+—\s+retry now/);
    for (const deadline = Date.now() + 3_000; (await seconds()) >= first;) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // "retry now" while the ticket route is overloaded: its hint replaces the wait.
    await rita.route('**/auth/ws-ticket', (route) =>
      route.fulfill({
        status: 503,
        headers: { 'retry-after': '30', 'content-type': 'application/json' },
        body: JSON.stringify({
          statusCode: 503,
          error: 'Service Unavailable',
          retryAfterMs: 30_000,
        }),
      }),
    );
    await rita.click('#retry-now');
    await rita.waitForSelector('#reconnect-in:text-matches("^(30|31)$")');

    await rita.unroute('**/auth/ws-ticket');
    await rita.click('#retry-now');
    await rita.waitForSelector(`${STATE}[data-state="open"]`, { timeout: 5_000 });
    expect(await line.isVisible()).toBe(false);
    await rita.locator('#members li', { hasText: 'Rita Retry (you)' }).waitFor();
  });

  it('switches between light and dark themes', async () => {
    const themed = await page(b);
    const before = await themed.getAttribute('html', 'data-theme');
    await themed.click('#theme');
    const after = await themed.getAttribute('html', 'data-theme');
    expect([before, after].sort()).toEqual(['dark', 'light']);
  });

  async function foreignPage(): Promise<{ page: Page; server: Server }> {
    const server = createServer((_, res) => res.end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const context = await browser.newContext();
    contexts.push(context);
    const opened = await context.newPage();
    await opened.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { page: opened, server };
  }
});
