/**
 * The page's Admin tab, in a real browser (Debian's Chromium driven by playwright-core) against the
 * real app with `MASTER_KEY` and a database (PGlite in memory): the tabs by mouse, arrows and
 * `#admin`; a wrong master key's error code; a key made through the page, shown once and listed,
 * used for a chat with the real `stories260K` model, its tokens charted (uPlot) and tabled per key
 * and model, then revoked through the page and refused; and the key list paged by its cursor. Also
 * the tab's script and uPlot's files, served from this app without a key.
 *
 * Set `WEB_PAGE_SCREENSHOTS=/some/dir` to save screenshots of the page while developing.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, graphqlWithKey, LIST_API_KEYS } from '../helpers/api-key-operations.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const MASTER_KEY = 'admin-tab-master-key-7c1e5a90';
const CHAT_MODEL = 'llama-cpp:stories260K';
/** Keys per page in the tab's table (`KEYS_PAGE_SIZE` in src/web/admin-tab.js). */
const KEYS_PAGE_SIZE = 10;

let started: StartedApp;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  started = await startApp({ MASTER_KEY, DATABASE_URL: 'memory://' });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await started?.stop();
});

/** Opens the page (at `path`) in a fresh context; `errors` collects uncaught page errors and requests to other hosts. */
async function openPage(path = '/', permissions: string[] = []): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  if (permissions.length) await context.grantPermissions(permissions, { origin: started.url });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    if (new URL(request.url()).host !== new URL(started.url).host) errors.push(`request to ${request.url()}`);
  });
  page.on('requestfailed', (request) => errors.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
  expect((await page.goto(`${started.url}${path}`))?.status()).toBe(200);
  await page.locator('body[data-ready="true"]').waitFor();
  await page.locator('#panel-admin[data-ready="true"]').waitFor({ state: 'attached' });
  return { page, errors };
}

/** Opens the Admin tab and opens it with `key` as the master key; waits until keys and usage answered. */
async function openAdmin(page: Page, key: string): Promise<void> {
  await page.getByRole('tab', { name: 'Admin' }).click();
  await page.getByLabel('Master key').fill(key);
  await page.getByTestId('master-key-open').click();
  await page.locator('[data-testid="keys-body"][data-state]').waitFor({ state: 'attached' });
  await page.locator('[data-testid="usage-body"][data-state]').waitFor({ state: 'attached' });
}

/** Saves a screenshot when `WEB_PAGE_SCREENSHOTS` names a folder. */
async function screenshot(page: Page, name: string): Promise<void> {
  const folder = process.env.WEB_PAGE_SCREENSHOTS;
  if (!folder) return;
  mkdirSync(folder, { recursive: true });
  await page.screenshot({ path: join(folder, `${name}.png`), fullPage: true });
}

/** In the page: how many pixels of the chart's canvas have exactly the page's accent colour (the bars' colour, used nowhere else on it). */
const COUNT_BAR_PIXELS = `(() => {
  const canvas = document.querySelector('[data-testid="usage-chart"] canvas');
  const accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim();
  const [red, green, blue] = [1, 3, 5].map((start) => Number.parseInt(accent.slice(start, start + 2), 16));
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let count = 0;
  for (let index = 0; index < data.length; index += 4) {
    if (data[index] === red && data[index + 1] === green && data[index + 2] === blue && data[index + 3] === 255) count += 1;
  }
  return count;
})()`;

describe('the Admin tab', () => {
  it("serves its script and uPlot's files without a key, with their types and caching", async () => {
    const html = await (await fetch(`${started.url}/`)).text();
    expect(html).toContain('<script type="module" src="/assets/admin-tab.js"></script>');
    expect(html).toContain('<script src="/assets/uplot.iife.min.js" defer></script>');
    expect(html).toContain('<link rel="stylesheet" href="/assets/uplot.min.css">');
    const assets = [
      { path: '/assets/admin-tab.js', type: 'application/javascript; charset=utf-8', cache: 'no-cache', text: 'createApiKey(input: $input)' },
      { path: '/assets/uplot.iife.min.js', type: 'application/javascript; charset=utf-8', cache: 'public, max-age=3600', text: 'var uPlot=' },
      { path: '/assets/uplot.min.css', type: 'text/css; charset=utf-8', cache: 'public, max-age=3600', text: '.uplot' },
    ];
    for (const asset of assets) {
      // Authentication is on (MASTER_KEY): these are public like the page.
      const response = await fetch(`${started.url}${asset.path}`);
      expect(response.status, asset.path).toBe(200);
      expect(response.headers.get('content-type'), asset.path).toBe(asset.type);
      expect(response.headers.get('cache-control'), asset.path).toBe(asset.cache);
      expect(response.headers.get('x-content-type-options'), asset.path).toBe('nosniff');
      const body = await response.text();
      expect(body, asset.path).toContain(asset.text);
      const head = await fetch(`${started.url}${asset.path}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(body));
      expect(await head.text()).toBe('');
    }
    expect((await fetch(`${started.url}/assets/uplot.esm.js`)).status).toBe(401); // nothing else under /assets is public
  });

  it('switches tabs by click and arrow keys, marks them for assistive technology, and opens Admin from #admin', async () => {
    const { page, errors } = await openPage();
    const chatTab = page.getByRole('tab', { name: 'Chat & images' });
    const adminTab = page.getByRole('tab', { name: 'Admin' });
    const chatPanel = page.getByRole('tabpanel', { name: 'Chat & images' });
    const adminPanel = page.getByRole('tabpanel', { name: 'Admin' });
    expect(await page.getByRole('tablist').getByRole('tab').count()).toBe(2);
    expect(await chatTab.getAttribute('aria-selected')).toBe('true');
    expect(await adminTab.getAttribute('aria-selected')).toBe('false');
    expect(await chatPanel.isVisible()).toBe(true);
    expect(await page.getByTestId('panel-admin').isHidden()).toBe(true);

    await adminTab.click();
    expect(await adminTab.getAttribute('aria-selected')).toBe('true');
    expect(await adminTab.getAttribute('tabindex')).toBe('0');
    expect(await chatTab.getAttribute('tabindex')).toBe('-1');
    expect(await adminPanel.isVisible()).toBe(true);
    expect(await page.getByTestId('panel-chat').isHidden()).toBe(true);
    expect(new URL(page.url()).hash).toBe('#admin');

    // Arrows move and select (wrapping), Home and End go to the ends; the focus follows.
    const selectedAfter = async (key: string) => {
      await page.keyboard.press(key);
      const focused = await page.evaluate('document.activeElement.id');
      expect(await page.getByRole('tab', { selected: true }).getAttribute('id')).toBe(focused);
      return focused;
    };
    expect(await selectedAfter('ArrowLeft')).toBe('tab-chat');
    expect(await chatPanel.isVisible()).toBe(true);
    expect(new URL(page.url()).hash).toBe('');
    expect(await selectedAfter('ArrowLeft')).toBe('tab-admin');
    expect(await selectedAfter('ArrowRight')).toBe('tab-chat');
    expect(await selectedAfter('End')).toBe('tab-admin');
    expect(await selectedAfter('Home')).toBe('tab-chat');

    const direct = await openPage('/#admin');
    expect(await direct.page.getByRole('tab', { name: 'Admin' }).getAttribute('aria-selected')).toBe('true');
    expect(await direct.page.getByRole('tabpanel', { name: 'Admin' }).isVisible()).toBe(true);
    expect([...errors, ...direct.errors]).toEqual([]);
  });

  it('shows the error code of a wrong master key', async () => {
    const { page, errors } = await openPage();
    await openAdmin(page, 'not-the-master-key-1234');
    expect(await page.getByTestId('keys-error').innerText()).toMatch(/^UNAUTHORIZED: /);
    expect(await page.getByTestId('usage-error').innerText()).toMatch(/^UNAUTHORIZED: /);
    expect(await page.locator('[data-testid="keys-body"]').getAttribute('data-state')).toBe('failed');
    expect(errors).toEqual([]);
    await screenshot(page, 'admin-wrong-key');
  });

  it('makes a key shown once, lists it, charts and tables its usage, and revokes it', async () => {
    const { page, errors } = await openPage('/', ['clipboard-read', 'clipboard-write']);
    await openAdmin(page, MASTER_KEY);
    expect(await page.getByTestId('keys-error').isHidden()).toBe(true);
    expect(await page.getByTestId('usage-error').isHidden()).toBe(true);
    await page.locator('[data-testid="usage-chart"][data-state="drawn"] canvas').waitFor();
    const barsBefore = (await page.evaluate(COUNT_BAR_PIXELS)) as number;
    expect(barsBefore).toBe(0); // nothing used yet: no bar

    // Make a key through the form.
    await page.getByLabel('Name', { exact: true }).fill('page test key');
    await page.getByLabel('Tokens/min').fill('5000');
    await page.getByLabel('Budget tokens').fill('100000');
    await page.getByLabel('Budget period').selectOption('MONTH');
    await page.getByLabel(/^Allowed models/).fill('stories260K, ');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByTestId('new-key-value');
    await shown.waitFor();
    const key = await shown.innerText();
    expect(key).toMatch(/^sk-gw-[A-Za-z0-9_-]{43}$/);
    expect(await page.getByTestId('new-key-note').innerText()).toContain('shown only this once');
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.getByTestId('new-key-status').innerText()).toBe('Copied to the clipboard.');
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(key);

    // Listed, newest first, with its prefix and limits; the server holds the same record.
    const listed = await graphqlWithKey(started.graphqlUrl, MASTER_KEY, LIST_API_KEYS, { first: 1 });
    const id = listed.body.data.apiKeys.nodes[0].id as string;
    const row = page.locator(`[data-testid="key-row"][data-key-id="${id}"]`);
    await row.waitFor();
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[0]).toBe('page test key');
    expect(key.startsWith(cells[1]!.replace(/…$/, ''))).toBe(true);
    expect(cells[1]!.length).toBeLessThan(key.length);
    expect(cells[2]).toBe('ACTIVE');
    expect(cells[4]).toBe('never');
    expect(cells[6]).toBe('5,000 tokens/min; 100,000 tokens per month; models: stories260K');
    await screenshot(page, 'admin-new-key');

    // Shown once: gone from the page when dismissed, and not there after a reload (the master key is).
    await page.getByRole('button', { name: 'Done, hide it' }).click();
    expect(await page.getByTestId('new-key').isHidden()).toBe(true);
    expect(await page.content()).not.toContain(key);
    await page.reload();
    await page.locator('[data-testid="keys-body"][data-state="loaded"]').waitFor({ state: 'attached' });
    expect(await page.getByRole('tab', { name: 'Admin' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByLabel('Master key').inputValue()).toBe(MASTER_KEY);
    await row.waitFor();
    expect(await page.content()).not.toContain(key);

    // Use it: a short chat with the real model; the usage row is written when flushed.
    const chat = await postJson(started.url, '/v1/chat/completions', { model: CHAT_MODEL, max_tokens: 6, messages: [{ role: 'user', content: 'Once upon a time' }] }, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    });
    expect(chat.status).toBe(200);
    const { usage } = (await chat.json()) as { usage: { total_tokens: number } };
    expect(usage.total_tokens).toBeGreaterThan(0);
    await started.app.usageRecorder!.flush();

    await page.getByTestId('usage-refresh').click();
    await page.locator(`[data-testid="usage-chart"][data-total-tokens="${usage.total_tokens}"]`).waitFor();
    expect((await page.evaluate(COUNT_BAR_PIXELS)) as number).toBeGreaterThan(barsBefore + 20); // today's bar
    const keyGroup = page.locator(`[data-testid="usage-row"][data-group="key:${id}"]`);
    await keyGroup.waitFor();
    expect(await keyGroup.getByTestId('usage-tokens').innerText()).toBe(usage.total_tokens.toLocaleString('en-US'));
    const keyCells = await keyGroup.locator('td').allInnerTexts();
    expect(keyCells[0]).toBe(`page test key (key:${id})`);
    expect(keyCells[1]).toBe('1'); // requests
    expect(keyCells[3]).toBe('0'); // images
    expect(keyCells[4]).toBe('— (1 unpriced)'); // no MODEL_PRICES: no cost, never a guess
    expect(keyCells[5]).toMatch(/^\d[\d,]* ms$/);
    await screenshot(page, 'admin-usage');

    await page.getByLabel('Group by').selectOption('MODEL');
    const modelGroup = page.locator('[data-testid="usage-body"][data-group-by="MODEL"] [data-testid="usage-row"][data-group="stories260K"]');
    await modelGroup.waitFor();
    expect(await modelGroup.getByTestId('usage-tokens').innerText()).toBe(usage.total_tokens.toLocaleString('en-US'));
    expect(await page.locator('#usage-group-header').innerText()).toBe('Model');

    // Revoke, after a confirmation that can be declined.
    await row.getByRole('button', { name: 'Revoke page test key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke this key?' });
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain('“page test key”');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await row.getAttribute('data-status')).toBe('ACTIVE');
    await row.getByRole('button', { name: 'Revoke page test key' }).click();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    const revoked = page.locator(`[data-testid="key-row"][data-key-id="${id}"][data-status="REVOKED"]`);
    await revoked.waitFor();
    expect(await revoked.getByRole('button').count()).toBe(0);
    expect((await revoked.locator('td').allInnerTexts())[5]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
    expect(await page.getByTestId('keys-error').isHidden()).toBe(true);

    const refused = await postJson(started.url, '/v1/chat/completions', { model: CHAT_MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'Again' }] }, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    });
    expect(refused.status).toBe(401);
    expect(errors).toEqual([]);
  });

  it('pages through the keys with the connection cursor', async () => {
    for (let index = 0; index < KEYS_PAGE_SIZE + 1; index += 1) await createApiKey(started.graphqlUrl, MASTER_KEY, { name: `paging key ${index}` });
    const all = await graphqlWithKey(started.graphqlUrl, MASTER_KEY, LIST_API_KEYS, { first: 100 });
    const ids = (all.body.data.apiKeys.nodes as Array<{ id: string }>).map((node) => node.id);
    expect(ids.length).toBeGreaterThan(KEYS_PAGE_SIZE);

    const { page, errors } = await openPage();
    await openAdmin(page, MASTER_KEY);
    const shownIds = () => page.getByTestId('key-row').evaluateAll((rows) => rows.map((row: any) => row.dataset.keyId as string));
    await expect.poll(shownIds).toEqual(ids.slice(0, KEYS_PAGE_SIZE));
    expect(await page.getByTestId('keys-page').innerText()).toBe('Page 1');
    expect(await page.getByTestId('keys-previous').isDisabled()).toBe(true);

    await page.getByRole('button', { name: 'Next page' }).click();
    await expect.poll(shownIds).toEqual(ids.slice(KEYS_PAGE_SIZE, 2 * KEYS_PAGE_SIZE));
    expect(await page.getByTestId('keys-page').innerText()).toBe('Page 2');
    expect(await page.getByTestId('keys-next').isDisabled()).toBe(ids.length <= 2 * KEYS_PAGE_SIZE);

    await page.getByRole('button', { name: 'Previous page' }).click();
    await expect.poll(shownIds).toEqual(ids.slice(0, KEYS_PAGE_SIZE));
    expect(await page.getByTestId('keys-previous').isDisabled()).toBe(true);
    expect(errors).toEqual([]);
  });
});
