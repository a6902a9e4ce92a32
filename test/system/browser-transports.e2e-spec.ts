import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { type RoomMessage, SwitchboardClient } from '@switchboard/client';
import { BroadcastService } from '../../libs/nest/src/broadcast/broadcast.service';
import { startApp, type TestApp, waitUntil } from '../support/app';
import { launchChromium } from '../support/browser';
import { parseMetrics } from '../support/prometheus';
import { freePort, suiteRedis, testPrefix } from '../support/redis';

const STATE = '[data-testid="state"]';

/**
 * A proxy that breaks WebSocket upgrades, as some corporate ones do: real nginx that answers an
 * upgrade on the WebSocket path with 403 and passes everything else, the event stream unbuffered.
 */
class RefusingNginx {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
  ) {}

  static async start(port: number, upstreamPort: number): Promise<RefusingNginx> {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-refusing-nginx-'));
    const upstream = `http://127.0.0.1:${upstreamPort}`;
    writeFileSync(
      join(dir, 'nginx.conf'),
      `worker_processes 1;
events { worker_connections 256; }
http {
  log_format switchboard '"$request_method $uri" $status';
  access_log ${join(dir, 'access.log')} switchboard;
  server {
    listen 127.0.0.1:${port};
    location = /ws {
      if ($http_upgrade != "") {
        return 403;
      }
      proxy_pass ${upstream};
    }
    location /sse {
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection '';
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 120s;
    }
    location / {
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade '';
      proxy_set_header Connection '';
      proxy_set_header Host $http_host;
    }
  }
}
`,
    );
    const child = spawn(
      '/usr/sbin/nginx',
      [
        '-c',
        join(dir, 'nginx.conf'),
        '-p',
        dir,
        '-g',
        `daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')} warn;`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const nginx = new RefusingNginx(child, dir, port);
    try {
      await waitUntil(
        async () => {
          if (child.exitCode !== null) {
            throw new Error(`nginx exited: ${stderr}`);
          }
          return (await fetch(`${nginx.http}/health/live`).catch(() => null))?.status === 200;
        },
        'nginx to answer',
        5_000,
      );
    } catch (error) {
      await nginx.stop();
      throw error;
    }
    return nginx;
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  accessLog(): string {
    return readFileSync(join(this.dir, 'access.log'), 'utf8');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      await new Promise<void>((resolve) => {
        this.child.once('exit', () => resolve());
        this.child.kill('SIGQUIT');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The smallest client page: the SDK module the demo loads (`/sdk/switchboard-client.js`), as one
 * user, with tab sharing at its default (on), recording the `handover.note` events it sees. It runs
 * in a document the server served (Chromium's Local Network Access checks refuse a WebSocket to
 * 127.0.0.1 from a page the test would fulfil itself); the demo's own script there stays signed out.
 */
const TAB_SCRIPT = `(async () => {
  const { SwitchboardClient } = await import('/sdk/switchboard-client.js');
  const answer = await fetch('/auth/dev-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'tabby', name: 'Tabby' }),
  });
  const { accessToken } = await answer.json();
  const client = new SwitchboardClient({ url: location.origin, getAccessToken: () => accessToken });
  window.notes = [];
  client.onEvent('handover.note', (data) => window.notes.push(data.n));
  window.sb = client;
  client.connect();
})()`;

/** What a tab page exposes to the test. */
interface TabWindow {
  sb?: SwitchboardClient;
  notes: number[];
}

/** The SDK in real headless Chromium: SSE where a proxy breaks WebSockets, and tabs that share. */
describe('transports and tab sharing in Chromium', () => {
  let browser: Browser;
  let redisUrl: string;
  let stopRedis: () => Promise<void>;
  const contexts: BrowserContext[] = [];
  const apps: TestApp[] = [];
  const clients: SwitchboardClient[] = [];
  let nginx: RefusingNginx | undefined;

  beforeAll(async () => {
    const redis = await suiteRedis();
    redisUrl = redis.url;
    stopRedis = redis.stop;
    browser = await launchChromium();
  });
  afterAll(async () => {
    clients.forEach((client) => client.close());
    await Promise.all(contexts.map((context) => context.close()));
    await browser?.close();
    await nginx?.stop();
    await Promise.all(apps.map((app) => app.close()));
    await stopRedis?.();
  });

  async function start(env: Record<string, string>, port: number): Promise<TestApp> {
    const app = await startApp(env, { port });
    apps.push(app);
    return app;
  }
  async function stop(app: TestApp): Promise<void> {
    apps.splice(apps.indexOf(app), 1);
    await app.close();
  }
  async function newContext(options: { bypassCSP?: boolean } = {}): Promise<BrowserContext> {
    const context = await browser.newContext(options);
    contexts.push(context);
    return context;
  }

  it('serves the demo over SSE through a proxy that refuses upgrades: it chats with a WebSocket user and recovers after a restart', async () => {
    const [appPort, otherPort, proxyPort] = [await freePort(), await freePort(), await freePort()];
    const env = {
      REDIS_URL: redisUrl,
      REDIS_PREFIX: testPrefix(),
      ALLOWED_ORIGINS: [appPort, otherPort, proxyPort]
        .map((port) => `http://127.0.0.1:${port}`)
        .join(','),
      CONNECT_ATTEMPTS_PER_MINUTE: '100',
    };
    let a = await start(env, appPort);
    const b = await start(env, otherPort);
    nginx = await RefusingNginx.start(proxyPort, appPort);

    // Wendy talks to the other instance over a WebSocket, with the same SDK in Node.
    const wendyToken = await b.devToken('wendy', { name: 'Wendy' });
    const wendy = new SwitchboardClient({
      url: b.http,
      getAccessToken: () => wendyToken,
      WebSocket,
      transports: ['websocket'],
    });
    clients.push(wendy);
    const heard: string[] = [];
    wendy.onEvent<RoomMessage>('room.message', (message) => heard.push(message.text));
    wendy.connect();
    await wendy.join('lobby');
    expect(wendy.transport).toBe('websocket');

    const context = await newContext();
    const page = await context.newPage();
    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    const streams: number[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/sse') {
        streams.push(response.status());
      }
    });
    await page.goto(`${nginx.http}/`);
    await page.fill('#name', 'Sam');
    await page.click('#signin button[type=submit]');
    await page.waitForSelector(`${STATE}[data-state="open"]`, { timeout: 15_000 });
    await page.waitForSelector('#room-title:text("# lobby")');
    expect(await page.textContent('[data-testid="transport"]')).toContain('SSE');
    // Two upgrades refused by the proxy, then the event stream, with the same ticket.
    // (nginx logs the open stream's GET /sse when it ends.)
    expect(sockets).toHaveLength(2);
    expect(streams).toEqual([200]);
    expect(nginx.accessLog().match(/"GET \/ws" \d+/g)).toEqual(['"GET /ws" 403', '"GET /ws" 403']);

    const say = async (text: string) => {
      await page.fill('#text', text);
      await page.click('#send button');
      await page.waitForSelector(`#messages li .text:text-is("${text}")`);
    };
    await say('hello from SSE');
    await waitUntil(() => heard.includes('hello from SSE'), 'Wendy to hear Sam');
    wendy.message('lobby', 'hello from a WebSocket');
    await page.waitForSelector('#messages li .text:text-is("hello from a WebSocket")');

    // The instance behind the proxy restarts; Wendy talks meanwhile; Sam comes back over SSE at
    // once (the fallback holds for the tab's session) and misses nothing.
    await stop(a);
    await page.waitForSelector(`${STATE}[data-state="reconnecting"]`);
    wendy.message('lobby', 'while you were away 1');
    wendy.message('lobby', 'while you were away 2');
    await waitUntil(() => heard.includes('while you were away 2'), 'Wendy to hear herself');
    a = await start(env, appPort);
    await page.waitForSelector(`${STATE}[data-state="open"]`, { timeout: 20_000 });
    await page.waitForSelector('#messages li .text:text-is("while you were away 2")');
    const texts = await page.locator('#messages li .text').allTextContents();
    expect(texts.slice(texts.indexOf('hello from SSE'))).toEqual([
      'hello from SSE',
      'hello from a WebSocket',
      'while you were away 1',
      'while you were away 2',
    ]);
    expect(sockets).toHaveLength(2);
    expect(streams.at(-1)).toBe(200);
    await say('back over SSE');
    await waitUntil(() => heard.includes('back over SSE'), 'Wendy to hear Sam again');
    expect(heard.filter((text) => text === 'back over SSE')).toHaveLength(1);
  }, 90_000);

  it('holds one connection for three tabs, and hands over within 2 s when the leading tab closes, with every message once', async () => {
    const port = await freePort();
    const app = await start(
      {
        REDIS_URL: redisUrl,
        REDIS_PREFIX: testPrefix(),
        ALLOWED_ORIGINS: `http://127.0.0.1:${port}`,
        CONNECT_ATTEMPTS_PER_MINUTE: '100',
      },
      port,
    );
    // The demo page's CSP would refuse the test's polling functions (eval).
    const context = await newContext({ bypassCSP: true });
    const tabs: Page[] = [];
    const sockets = new Map<Page, number>();
    for (let i = 0; i < 3; i++) {
      const tab = await context.newPage();
      tab.on('websocket', () => sockets.set(tab, (sockets.get(tab) ?? 0) + 1));
      await tab.goto(`${app.http}/`);
      await tab.evaluate(TAB_SCRIPT);
      await tab.waitForFunction(() => (globalThis as unknown as TabWindow).sb?.state === 'open');
      tabs.push(tab);
    }
    const role = (tab: Page) => tab.evaluate(() => (globalThis as unknown as TabWindow).sb?.role);
    const notes = (tab: Page) => tab.evaluate(() => (globalThis as unknown as TabWindow).notes);
    const roles = await Promise.all(tabs.map(role));
    expect([...roles].sort()).toEqual(['follower', 'follower', 'leader']);
    const leader = tabs[roles.indexOf('leader')];
    expect([...sockets.entries()].map(([tab, count]) => [tab === leader, count])).toEqual([
      [true, 1],
    ]);
    expect(await connections(app)).toBe(1);

    const broadcast = app.app.get(BroadcastService);
    await broadcast.toUser('tabby', 'handover.note', { n: 0 });
    for (const tab of tabs) {
      await tab.waitForFunction(() => (globalThis as unknown as TabWindow).notes.length === 1);
    }

    // The leading tab closes; notes keep coming while the others take over.
    const others = tabs.filter((tab) => tab !== leader);
    const closedAt = Date.now();
    await leader.close();
    let n = 1;
    let tookOverMs = 0;
    while (tookOverMs === 0) {
      await broadcast.toUser('tabby', 'handover.note', { n: n++ });
      const states = await Promise.all(
        others.map((tab) =>
          tab.evaluate(() => {
            const client = (globalThis as unknown as TabWindow).sb;
            return `${client?.role} ${client?.state}`;
          }),
        ),
      );
      if (states.includes('leader open')) {
        tookOverMs = Date.now() - closedAt;
      } else {
        expect(Date.now() - closedAt).toBeLessThan(2_000);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(tookOverMs).toBeLessThan(2_000);
    await broadcast.toUser('tabby', 'handover.note', { n: n++ });
    const all = Array.from({ length: n }, (_, i) => i);
    for (const tab of others) {
      await waitUntil(async () => (await notes(tab)).length >= n, `notes 0…${n - 1} in a tab`);
      expect(await notes(tab)).toEqual(all);
    }
    expect(n).toBeGreaterThan(3); // some were published while no tab was connected
    expect([...(await Promise.all(others.map(role)))].sort()).toEqual(['follower', 'leader']);
    await waitUntil(async () => (await connections(app)) === 1, 'one connection again');
  }, 60_000);
});

/** `ws_connections_active` of an instance, over both transports. */
async function connections(app: TestApp): Promise<number> {
  const samples = parseMetrics(await (await fetch(`${app.http}/metrics`)).text());
  return [...samples.entries()]
    .filter(([key]) => key.startsWith('ws_connections_active'))
    .reduce((sum, [, value]) => sum + value, 0);
}
