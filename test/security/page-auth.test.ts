/**
 * The page at `/` with authentication on, in a real browser (Debian's Chromium driven by
 * playwright-core): it loads without a key, says the server wants one, and once a key is typed
 * into its "API key" field it loads the models over HTTP (Bearer) and streams a chat over
 * graphql-ws (the key in `connection_init`); the key is remembered across reloads.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const PAGE_KEY = 'page-key-5f1c2a';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let browser: Browser;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({ defaultScenario: { type: 'stream', tokenCount: 12, gapMs: 5 } });
  started = await startApp({
    API_KEYS: PAGE_KEY,
    CSRF_PREVENTION: 'true',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'] }]),
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
});

afterAll(async () => {
  await browser?.close();
  await started?.stop();
  await upstream?.close();
});

describe('the page with API keys required', () => {
  it('asks for a key, then loads models and streams a chat with it, and remembers it', async () => {
    const context = await browser.newContext();
    const page: Page = await context.newPage();
    const sentFrames: string[] = [];
    page.on('websocket', (socket) => socket.on('framesent', (frame) => typeof frame.payload === 'string' && sentFrames.push(frame.payload)));

    await page.goto(`${started.url}/`);
    await page.locator('body[data-ready="true"]').waitFor();
    await expect.poll(() => page.getByTestId('page-error').innerText()).toMatch(/UNAUTHORIZED: Authentication required/);

    await page.getByLabel('API key').fill(PAGE_KEY);
    await page.getByLabel('API key').press('Tab'); // `change`
    await expect
      .poll(() => page.getByTestId('chat-model').locator('option').evaluateAll((options) => options.map((option: any) => option.value as string)))
      .toContain('fake:fake-model');
    await expect.poll(() => page.getByTestId('page-error').isHidden()).toBe(true);

    await page.getByTestId('chat-model').selectOption('fake:fake-model');
    await page.getByTestId('chat-input').fill('Once upon a time');
    await page.getByTestId('chat-send').click();
    const answer = page.getByTestId('chat-turn-assistant').first();
    await expect.poll(() => answer.getAttribute('data-state'), { timeout: 10_000 }).toBe('done');
    expect(await answer.getByTestId('message-text').innerText()).toMatch(/^Once upon a time/);
    const init = sentFrames.map((frame) => JSON.parse(frame) as { type: string; payload?: unknown }).find((message) => message.type === 'connection_init');
    expect(init?.payload).toEqual({ authorization: `Bearer ${PAGE_KEY}` });

    await page.reload();
    await page.locator('body[data-ready="true"]').waitFor();
    expect(await page.getByLabel('API key').inputValue()).toBe(PAGE_KEY);
    expect(await page.getByTestId('chat-model').locator('option').evaluateAll((options) => options.map((option: any) => option.value as string))).toContain(
      'fake:fake-model',
    );
    await context.close();
  });
});
