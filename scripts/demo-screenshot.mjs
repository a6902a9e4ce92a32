// Regenerates docs/demo.png, the README's picture of the demo: the built server (npm run build) in
// development mode, two users in headless Chromium, a short conversation.
//   node scripts/demo-screenshot.mjs
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) =>
  existsSync(path),
);
if (!CHROMIUM) {
  throw new Error('Chromium was not found (Debian: apt-get install chromium)');
}

// A real port: in development the allowed origins are this port on localhost and 127.0.0.1.
const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = probe.address();
    probe.close(() => resolve(free));
  });
});
const server = spawn(process.execPath, [join(root, 'dist/main.js')], {
  env: {
    ...process.env,
    NODE_ENV: 'development',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((resolve, reject) => {
  let buffered = '';
  server.stdout.on('data', (chunk) => {
    buffered += chunk;
    const found =
      /"msg":"Switchboard listening".*?"url":"([^"]+)"|"url":"([^"]+)".*?"msg":"Switchboard listening"/.exec(
        buffered,
      );
    if (found) {
      resolve(found[1] ?? found[2]);
    }
  });
  server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
});

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const open = async (name) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 560 } });
    const page = await context.newPage();
    await page.goto(url);
    await page.fill('#name', name);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('[data-testid="state"][data-state="open"]');
    await page.waitForSelector('#room-title:text("# lobby")');
    return page;
  };
  const say = async (page, text) => {
    await page.fill('#text', text);
    await page.click('#send button');
    await page.waitForSelector(`#messages li .text:text("${text}")`);
  };
  const ada = await open('Ada');
  const grace = await open('Grace');
  await ada.locator('#members li', { hasText: 'Grace' }).waitFor();
  await say(grace, 'Morning! Is the deploy still on for 10:00?');
  await say(ada, 'Yes: instance A drains first, clients move to B and recover what they missed.');
  await say(grace, 'Nice, I will watch the dashboard.');
  await ada.waitForTimeout(2100); // one typing notice per user and room per 2 s
  await ada.type('#text', 'Th');
  await grace.waitForSelector('#typing:text("Ada is typing…")');
  await grace.screenshot({ path: join(root, 'docs/demo.png') });
  console.log('docs/demo.png written');
} finally {
  await browser.close();
  server.kill('SIGTERM');
}
