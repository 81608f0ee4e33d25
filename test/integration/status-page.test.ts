/**
 * The status page in a real browser (Debian's chromium, driven by
 * playwright-core), served by the supervisor of a worker_processes 2
 * fulcrum: every upstream and server with live state and numbers, updated
 * over server-sent events; a server goes "down" on the page when its process
 * is killed; with the admin token entered, Drain and Enable buttons work;
 * the page fits a phone's width.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { upstreamState } from '../support/admin.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { sleep } from '../support/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;
const TOKEN = 'status-page-token';
let backends: TestBackends;
let fulcrum: FulcrumProcess;
let browser: BrowserContext;
let page: Page;
let port: number;
let adminPort: number;
let traffic: Promise<void> | undefined;
let running = true;

before(async () => {
  if (skip) return;
  backends = await spawnBackends(3);
  [port, adminPort] = await freePorts(2);
  fulcrum = await startFulcrum({
    config: `
worker_processes 2;
admin { listen 127.0.0.1:${adminPort}; token ${TOKEN}; }
http {
  access_log off;
  upstream backend_servers {
    server 127.0.0.1:${backends.ports[0]} max_fails=1 fail_timeout=30s;
    server 127.0.0.1:${backends.ports[1]} max_fails=1 fail_timeout=30s;
    server 127.0.0.1:${backends.ports[2]} max_fails=1 fail_timeout=30s;
  }
  server { listen 127.0.0.1:${port}; location /api { proxy_pass http://backend_servers; } }
}
`,
  });
  // Steady traffic, so rates show and a dead backend is noticed by passive health.
  traffic = (async () => {
    while (running) {
      await request({ port, path: '/api/hello' }).catch(() => undefined);
      await sleep(15);
    }
  })();
  browser = await chromium.launchPersistentContext(tempDir('fulcrum-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage();
});

after(async () => {
  running = false;
  await traffic;
  await browser?.close();
  await fulcrum?.stop();
  await backends?.stop();
});

const card = (i: number): string => `article.server[data-server="127.0.0.1:${backends.ports[i]}"]`;

describe('status page (chromium)', { skip }, () => {
  test('shows every server with live state and numbers', async () => {
    await page.goto(`http://127.0.0.1:${adminPort}/status?interval=250`);
    await page.waitForSelector('#live.on', { timeout: 5000 });
    assert.equal(await page.locator('section[data-upstream="backend_servers"] h2').textContent().then((t) => t?.startsWith('backend_servers')), true);
    for (let i = 0; i < 3; i++) await page.waitForSelector(`${card(i)}[data-state="up"]`, { timeout: 5000 });
    // Request rates show up as traffic flows (both workers' numbers added by the supervisor).
    await page.waitForFunction(`[...document.querySelectorAll('article.server .rps')].every((e) => Number(e.textContent) > 0)`, undefined, { timeout: 5000 });
    const summary = await page.locator('#summary').textContent();
    assert.match(summary ?? '', /2 workers/);
    for (const label of ['req/s', 'errors', 'latency', 'active', 'conns']) assert.equal(await page.locator(`${card(0)} dt`, { hasText: label }).count(), 1, label);
    assert.match((await page.locator(`${card(0)} .latency`).textContent()) ?? '', /ms$/);
  });

  test('a server goes down on the page when its process is killed', async () => {
    await backends.kill(1);
    await page.waitForSelector(`${card(1)}[data-state="down"]`, { timeout: 8000 });
    assert.equal((await page.locator(`${card(1)} .state`).textContent())?.trim(), 'down');
    assert.equal(await page.locator(`${card(0)}`).getAttribute('data-state'), 'up');
  });

  test('with the token entered, Drain and Enable buttons change the server', async () => {
    assert.equal(await page.locator(`${card(0)} button[data-action="drain"]`).isVisible(), false, 'no buttons without a token');
    await page.fill('#token', TOKEN);
    await page.click('#token-save');
    await page.locator(`${card(0)} button[data-action="drain"]`).click();
    await page.waitForSelector(`${card(0)}[data-state="draining"]`, { timeout: 5000 });
    await page.waitForFunction(`document.getElementById('message').textContent.includes('done')`, undefined, { timeout: 3000 });
    assert.equal((await upstreamState(adminPort, 'backend_servers')).servers[0].state, 'draining', 'the API agrees');
    await page.locator(`${card(0)} button[data-action="enable"]`).click();
    await page.waitForSelector(`${card(0)}[data-state="up"]`, { timeout: 5000 });
    // A wrong token is reported on the page, and nothing changes.
    await page.click('#token-clear');
    await page.fill('#token', 'wrong');
    await page.click('#token-save');
    await page.locator(`${card(2)} button[data-action="drain"]`).click();
    await page.waitForFunction(`document.getElementById('message').className === 'error'`, undefined, { timeout: 3000 });
    assert.match((await page.locator('#message').textContent()) ?? '', /wrong token/);
    assert.equal((await upstreamState(adminPort, 'backend_servers')).servers[2].state, 'up');
  });

  test('readable on a phone: one column, no horizontal scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForSelector(`${card(2)}`, { timeout: 3000 });
    // (Evaluated in the page: a string, since this project compiles without the DOM library.)
    const layout = (await page.evaluate(`({
      scrollWidth: document.documentElement.scrollWidth,
      width: window.innerWidth,
      lefts: [...document.querySelectorAll('article.server')].map((e) => Math.round(e.getBoundingClientRect().left)),
      font: parseFloat(getComputedStyle(document.body).fontSize),
    })`)) as { scrollWidth: number; width: number; lefts: number[]; font: number };
    assert.ok(layout.scrollWidth <= layout.width, `page ${layout.scrollWidth}px wide in a ${layout.width}px viewport`);
    assert.equal(new Set(layout.lefts).size, 1, 'cards stacked in one column');
    assert.ok(layout.font >= 14);
  });
});
