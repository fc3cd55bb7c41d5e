/**
 * The page at `/`, in a real browser (Debian's Chromium driven by playwright-core) against the real
 * app: the llama-cpp model `stories260K` for chat and a fake Gradio Space for images. Proves the
 * page loads nothing from elsewhere, streams chat tokens into the DOM as they arrive over graphql-ws,
 * keeps a conversation (sending only the new message with its conversation id), and shows images.
 *
 * Set `WEB_PAGE_SCREENSHOTS=/some/dir` to save screenshots of the page while developing.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGradioSpace, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { fakeReasoning, fakeTokens, fakeToolCalls, startFakeOpenAIUpstream, unusedBaseURL, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const CHAT_MODEL = 'llama-cpp:stories260K';
const IMAGE_MODEL = 'hf-space:flux-1-schnell';
/** A fake OpenAI-compatible model that streams a token every 20 ms until the client leaves. */
const ENDLESS_MODEL = 'fake:endless?gapMs=20';

let space: FakeGradioSpace;
let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  space = await startFakeGradioSpace();
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    HF_SPACES_ENABLED: 'true',
    HF_FLUX_SCHNELL_URL: space.baseURL,
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'fake', baseURL: upstream.baseURL, models: ['endless?gapMs=20', 'reasoning', 'tool-calls?calls=2'] },
      // Nothing listens there: unavailable, and tried first, so its model comes first in the picker.
      { id: 'down', baseURL: await unusedBaseURL(), models: ['down-model'] },
    ]),
    PROVIDER_ORDER: 'down',
    LLAMA_CONTEXT_SIZE: '1024',
  });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await started?.stop();
  await space?.close();
  await upstream?.close();
});

/** What a page did: every request and WebSocket URL, failures, HTTP errors, console errors, sent WebSocket frames. */
interface PageLog {
  urls: string[];
  failed: string[];
  httpErrors: string[];
  consoleErrors: string[];
  sentFrames: string[];
}

/** Opens the page in a fresh browser context and waits until it has loaded the models. */
async function openPage(viewport = { width: 1280, height: 900 }): Promise<{ page: Page; log: PageLog }> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  const log: PageLog = { urls: [], failed: [], httpErrors: [], consoleErrors: [], sentFrames: [] };
  page.on('request', (request) => log.urls.push(request.url()));
  page.on('requestfailed', (request) => log.failed.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400) log.httpErrors.push(`${response.status()} ${response.url()}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') log.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => log.consoleErrors.push(`page error: ${error.message}`));
  page.on('websocket', (socket) => {
    log.urls.push(socket.url());
    socket.on('framesent', (frame) => {
      if (typeof frame.payload === 'string') log.sentFrames.push(frame.payload);
    });
  });
  const response = await page.goto(`${started.url}/`);
  expect(response?.status()).toBe(200);
  await page.locator('body[data-ready="true"]').waitFor();
  return { page, log };
}

/** Saves a screenshot when `WEB_PAGE_SCREENSHOTS` names a folder. */
async function screenshot(page: Page, name: string): Promise<void> {
  const folder = process.env.WEB_PAGE_SCREENSHOTS;
  if (!folder) return;
  mkdirSync(folder, { recursive: true });
  await page.screenshot({ path: join(folder, `${name}.png`), fullPage: true });
}

/** The messages the server keeps for a conversation (null when it has none), over GraphQL HTTP. */
async function conversationMessages(id: string): Promise<Array<{ role: string; content: string }> | null> {
  const response = await fetch(started.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'query ($id: ID!) { conversation(id: $id) { messages { role content } } }', variables: { id } }),
  });
  const body = (await response.json()) as { data?: { conversation: { messages: Array<{ role: string; content: string }> } | null }; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data!.conversation?.messages ?? null;
}

/** A generation's status, over GraphQL HTTP. */
async function generationStatus(id: string): Promise<string | undefined> {
  const response = await fetch(started.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'query ($id: ID!) { generation(id: $id) { status } }', variables: { id } }),
  });
  const body = (await response.json()) as { data?: { generation: { status: string } | null } };
  return body.data?.generation?.status;
}

/** The hosts of the URLs, deduplicated. */
const hostsOf = (urls: string[]) => [...new Set(urls.map((url) => new URL(url).host))];

/** The `input` of every chatCompletion subscription the page sent over graphql-ws. */
function sentChatInputs(log: PageLog): Array<{ conversationId?: string; messages: Array<{ role: string; content: string }>; model?: string }> {
  return log.sentFrames
    .map((frame) => JSON.parse(frame) as { type: string; payload?: { query?: string; variables?: { input?: any } } })
    .filter((message) => message.type === 'subscribe' && message.payload?.query?.includes('chatCompletion('))
    .map((message) => message.payload!.variables!.input);
}

/**
 * In the page: records the text length of the last assistant turn on every DOM mutation while it
 * is still streaming (`window.__streamLengths`, reset by each call), and marks the transcript
 * `data-grew="true"` once two different non-empty lengths were seen.
 */
const RECORD_STREAM_LENGTHS = `(() => {
  window.__streamLengths = [];
  window.__streamObserver?.disconnect();
  const transcript = document.querySelector('[data-testid="chat-transcript"]');
  window.__streamObserver = new MutationObserver(() => {
    const turns = transcript.querySelectorAll('[data-testid="chat-turn-assistant"]');
    const last = turns[turns.length - 1];
    if (!last || last.dataset.state !== 'streaming') return;
    const length = last.querySelector('[data-testid="message-text"]').textContent.length;
    if (length > 0) window.__streamLengths.push(length);
    if (new Set(window.__streamLengths).size >= 2) transcript.dataset.grew = 'true';
  });
  delete transcript.dataset.grew;
  window.__streamObserver.observe(transcript, { subtree: true, childList: true, characterData: true });
})()`;

/** Sends one chat message and waits for its answer to finish streaming; returns the lengths seen while it streamed and the final text. */
async function chatTurn(page: Page, message: string): Promise<{ lengths: number[]; text: string }> {
  const answers = page.getByTestId('chat-turn-assistant');
  const index = await answers.count();
  await page.evaluate(RECORD_STREAM_LENGTHS);
  await page.getByTestId('chat-input').fill(message);
  await page.getByTestId('chat-send').click();
  const answer = answers.nth(index);
  // Text arrives while the turn is still streaming: at least two different non-empty lengths.
  await page.locator('[data-testid="chat-transcript"][data-grew="true"]').waitFor({ state: 'attached' });
  await expect.poll(() => answer.getAttribute('data-state')).toBe('done');
  const lengths = (await page.evaluate('window.__streamLengths')) as number[];
  const text = await answer.getByTestId('message-text').innerText();
  return { lengths, text };
}

describe('the web page', () => {
  it('serves the page and graphql-ws with their headers, answers HEAD, and passes other requests on', async () => {
    for (const path of ['/', '/index.html', '/?utm=x']) {
      const response = await fetch(`${started.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
      const html = await response.text();
      expect(html).toContain('<script src="/assets/graphql-ws.min.js"></script>');
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another host
    }
    const script = await fetch(`${started.url}/assets/graphql-ws.min.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^application\/javascript/);
    expect(await script.text()).toContain('graphqlWs');

    const head = await fetch(`${started.url}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
    expect(await head.text()).toBe('');

    expect((await fetch(`${started.url}/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${started.url}/`, { method: 'POST', body: 'x' })).status).toBe(404);
    const graphql = await fetch(started.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ models { id } }' }),
    });
    expect(graphql.status).toBe(200);
  });

  it('marks the models of unavailable providers and picks an available model by default', async () => {
    const { page } = await openPage();
    const options = await page
      .getByTestId('chat-model')
      .locator('option')
      .evaluateAll((elements) => elements.map((option: any) => ({ value: option.value as string, text: option.textContent as string })));
    expect(options[0]).toEqual({ value: 'down:down-model', text: expect.stringMatching(/^down-model — down \(unavailable: .+\)$/) });
    expect(options.find((option) => option.value === CHAT_MODEL)!.text).toBe('stories260K — llama-cpp');
    expect(await page.getByTestId('chat-model').inputValue()).toBe(CHAT_MODEL);
  });

  it('loads with no failed requests, no console errors, nothing from outside 127.0.0.1, and fills the model pickers', async () => {
    const { page, log } = await openPage();
    expect(await page.title()).toBe('GraphQL AI gateway');
    const chatModels = await page.getByTestId('chat-model').locator('option').evaluateAll((options) => options.map((option: any) => option.value as string));
    expect(chatModels).toContain(CHAT_MODEL);
    expect(chatModels).not.toContain(IMAGE_MODEL);
    const imageModels = await page.getByTestId('image-model').locator('option').evaluateAll((options) => options.map((option: any) => option.value as string));
    expect(imageModels).toEqual([IMAGE_MODEL]);
    await expect.poll(() => page.getByTestId('page-error').isHidden()).toBe(true);
    // Labels name the controls.
    await page.getByLabel('Message').waitFor();
    await page.getByLabel('Prompt').waitFor();
    await page.getByRole('button', { name: 'New conversation' }).waitFor();

    expect(log.failed).toEqual([]);
    expect(log.httpErrors).toEqual([]);
    expect(log.consoleErrors).toEqual([]);
    expect(log.urls.map((url) => new URL(url).pathname)).toEqual(expect.arrayContaining(['/', '/assets/graphql-ws.min.js', '/graphql']));
    expect(hostsOf(log.urls)).toEqual([new URL(started.url).host]);
    await screenshot(page, 'loaded');
  });

  it("folds a model's reasoning above its answer and shows the tool calls it made", async () => {
    const { page } = await openPage();
    await page.getByTestId('chat-model').selectOption('fake:reasoning');
    await page.getByTestId('chat-input').fill('Tell me a story');
    await page.getByTestId('chat-send').click();
    const answer = page.getByTestId('chat-turn-assistant').last();
    await expect.poll(() => answer.getAttribute('data-state')).toBe('done');
    const reasoning = answer.getByTestId('message-reasoning');
    expect(await reasoning.evaluate((element: any) => element.open)).toBe(false);
    expect(await reasoning.evaluate((element: any) => element.lastElementChild.textContent)).toBe(fakeReasoning(4).join(''));
    expect(await answer.getByTestId('message-text').innerText()).toBe(fakeTokens(4).join(''));
    await reasoning.locator('summary').click();
    expect(await reasoning.evaluate((element: any) => element.open)).toBe(true);

    await page.getByTestId('chat-model').selectOption('fake:tool-calls?calls=2');
    await page.getByTestId('chat-input').fill('What is the weather?');
    await page.getByTestId('chat-send').click();
    const caller = page.getByTestId('chat-turn-assistant').last();
    await expect.poll(() => caller.getAttribute('data-state')).toBe('done');
    expect(await caller.getByTestId('message-tool-calls').locator('li').allInnerTexts()).toEqual(
      fakeToolCalls(2).map((call) => `Tool call: ${call.name}(${call.arguments})`),
    );
    expect(await caller.locator('.meta').innerText()).toContain('finished: tool_calls');
    await screenshot(page, 'reasoning-and-tool-calls');
  });

  it('streams a chat answer token by token, keeps the conversation, and starts a new one', async () => {
    const { page, log } = await openPage();
    await page.getByTestId('chat-model').selectOption(CHAT_MODEL);
    await page.getByTestId('chat-max-tokens').fill('150');

    const first = await chatTurn(page, 'Once upon a time');
    expect(new Set(first.lengths).size).toBeGreaterThanOrEqual(2);
    expect(first.lengths).toEqual([...first.lengths].sort((a, b) => a - b)); // it only grows
    expect(first.text.length).toBeGreaterThanOrEqual(Math.max(...first.lengths));
    expect(first.text.length).toBeGreaterThan(20);
    expect(first.text).toMatch(/[a-z]{3,}/);

    const second = await chatTurn(page, 'Then the little dog');
    expect(new Set(second.lengths).size).toBeGreaterThanOrEqual(2);
    expect(second.text).toMatch(/[a-z]{3,}/);
    await expect.poll(() => page.getByTestId('chat-turn-user').count()).toBe(2);
    await expect.poll(() => page.getByTestId('chat-turn-assistant').count()).toBe(2);
    expect(await page.getByTestId('chat-turn-user').allInnerTexts()).toEqual([
      expect.stringContaining('Once upon a time'),
      expect.stringContaining('Then the little dog'),
    ]);
    expect(await page.getByTestId('chat-stop').isDisabled()).toBe(true);
    await expect.poll(() => page.getByTestId('chat-error').isHidden()).toBe(true);
    await screenshot(page, 'chat');

    // Both turns: one conversation id, only the new user message, the chosen model.
    const [firstInput, secondInput] = sentChatInputs(log);
    expect(firstInput).toMatchObject({ model: CHAT_MODEL, maxTokens: 150, messages: [{ role: 'USER', content: 'Once upon a time' }] });
    expect(secondInput).toMatchObject({ model: CHAT_MODEL, messages: [{ role: 'USER', content: 'Then the little dog' }] });
    expect(firstInput!.messages).toHaveLength(1);
    expect(secondInput!.messages).toHaveLength(1);
    expect(firstInput!.conversationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(secondInput!.conversationId).toBe(firstInput!.conversationId);

    // The server kept the conversation the page named.
    const stored = await conversationMessages(firstInput!.conversationId!);
    expect(stored).toEqual([
      { role: 'USER', content: 'Once upon a time' },
      { role: 'ASSISTANT', content: first.text },
      { role: 'USER', content: 'Then the little dog' },
      { role: 'ASSISTANT', content: second.text },
    ]);

    // "New conversation" clears the turns, makes the server forget the old one, and the next message carries a fresh id.
    await page.getByTestId('new-conversation').click();
    await expect.poll(() => page.getByTestId('chat-turn-user').count()).toBe(0);
    await expect.poll(() => conversationMessages(firstInput!.conversationId!)).toBeNull();
    await page.getByTestId('chat-max-tokens').fill('8');
    await page.getByTestId('chat-input').fill('Once upon a time');
    await page.getByTestId('chat-input').press('Enter');
    await page.locator('[data-testid="chat-turn-assistant"][data-state="done"]').waitFor();
    const thirdInput = sentChatInputs(log)[2];
    expect(thirdInput).toMatchObject({ messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 8 });
    expect(thirdInput!.conversationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(thirdInput!.conversationId).not.toBe(firstInput!.conversationId);

    expect(log.consoleErrors).toEqual([]);
    expect(log.failed).toEqual([]);
    expect(hostsOf(log.urls)).toEqual([new URL(started.url).host]);
  });

  it('stops a streaming answer: the subscription closes and the generation is cancelled', async () => {
    const { page, log } = await openPage();
    await page.getByTestId('chat-model').selectOption(ENDLESS_MODEL);
    await page.evaluate(RECORD_STREAM_LENGTHS);
    await page.getByTestId('chat-input').fill('Tell me everything');
    await page.getByTestId('chat-send').click();
    await page.locator('[data-testid="chat-transcript"][data-grew="true"]').waitFor({ state: 'attached' });
    expect(await page.getByTestId('chat-send').isDisabled()).toBe(true);
    await page.getByTestId('chat-stop').click();

    const answer = page.getByTestId('chat-turn-assistant');
    await expect.poll(() => answer.getAttribute('data-state')).toBe('stopped');
    expect(await page.getByTestId('chat-stop').isDisabled()).toBe(true);
    expect(await page.getByTestId('chat-send').isEnabled()).toBe(true);
    const generationId = await answer.getAttribute('data-generation-id');
    expect(generationId).toBeTruthy();
    await upstream.waitForClientClose(1);
    await expect.poll(() => generationStatus(generationId!)).toBe('CANCELLED');
    // The page closed its subscription (graphql-ws "complete"), which is what cancels the generation.
    expect(log.sentFrames.map((frame) => (JSON.parse(frame) as { type: string }).type)).toContain('complete');
    const text = await answer.getByTestId('message-text').innerText();
    expect(text.length).toBeGreaterThan(0);
    expect(log.consoleErrors).toEqual([]);
  });

  it('generates an image with the fake Space and shows it, loaded from /images/', async () => {
    const { page, log } = await openPage({ width: 390, height: 844 });
    await page.getByTestId('image-model').selectOption(IMAGE_MODEL);
    await page.getByTestId('image-prompt').fill('A red lighthouse at dusk');
    await page.getByTestId('image-generate').click();
    const image = page.locator('[data-testid="generated-image"][data-state="loaded"]');
    await image.waitFor();
    expect(await image.evaluate((element: any) => element.naturalWidth as number)).toBeGreaterThan(0);
    const source = await image.getAttribute('src');
    expect(new URL(source!).pathname).toMatch(/^\/images\//);
    expect(await image.getAttribute('alt')).toBe('A red lighthouse at dusk');
    await expect.poll(() => page.getByTestId('image-status').innerText()).toMatch(/^Done: 1 image/);
    expect(await page.getByTestId('image-generate').isEnabled()).toBe(true);
    expect(await page.getByTestId('image-error').isHidden()).toBe(true);
    expect(space.requests).toHaveLength(1);
    await screenshot(page, 'image-phone');

    expect(log.consoleErrors).toEqual([]);
    expect(log.failed).toEqual([]);
    expect(log.httpErrors).toEqual([]);
    // Image URLs use PUBLIC_BASE_URL, which defaults to http://localhost:PORT: still this machine, this app.
    const port = new URL(started.url).port;
    expect(hostsOf(log.urls).sort()).toEqual([`127.0.0.1:${port}`, `localhost:${port}`]);
  });

  it('shows a failed generation in a visible error element', async () => {
    const { page, log } = await openPage();
    await page.getByTestId('image-prompt').fill('scenario:error?message=Out%20of%20memory');
    await page.getByTestId('image-generate').click();
    const error = page.getByTestId('image-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.innerText()).toContain('Out of memory');
    await expect.poll(() => page.getByTestId('image-status').innerText()).toBe('Failed.');
    expect(await page.getByTestId('generated-image').count()).toBe(0);
    expect(log.consoleErrors).toEqual([]);
  });
});
