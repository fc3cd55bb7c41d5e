/**
 * `examples/browser-urql`: a page that streams a chat with urql's `subscriptionExchange` over
 * graphql-ws. The test checks its generated `src/gql/` against codegen (no drift), type-checks it
 * with its own tsconfig, bundles `src/main.ts` with esbuild as `npm run build` does, serves the page
 * from a local server on another origin than the gateway, and runs it in Chromium against the real
 * server and model: the streamed text appears in the page and equals a direct request's.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_URQL_EXAMPLE, committedFiles, runCodegen, typeCheckExample } from '../helpers/examples.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const CHAT_MODEL = 'llama-cpp:stories260K';

/** Bundles the page's script as the example's `npm run build` does, in memory. */
async function bundleExample(): Promise<string> {
  const result = await build({
    entryPoints: [join(BROWSER_URQL_EXAMPLE, 'src', 'main.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

/** Serves the example's `index.html` at `/` and the bundle at `/dist/main.js` on 127.0.0.1, a port of its own. */
async function serveExample(bundle: string): Promise<{ server: Server; url: string }> {
  const html = readFileSync(join(BROWSER_URQL_EXAMPLE, 'index.html'), 'utf8');
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://example.invalid').pathname;
    if (path === '/' || path === '/index.html') response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (path === '/dist/main.js') response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(bundle);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('the browser example with urql', () => {
  it('has committed exactly what codegen generates from schema.graphql (no drift)', async () => {
    const generated = await runCodegen(BROWSER_URQL_EXAMPLE);
    const committed = committedFiles(BROWSER_URQL_EXAMPLE, 'src/gql');
    expect(generated.map((file) => file.path).sort()).toEqual(committed.map((file) => file.path).sort());
    for (const file of generated) {
      expect(file.content, `${file.path} differs from codegen's output: run npx graphql-codegen --config codegen.ts in examples/browser-urql`).toBe(
        committed.find((candidate) => candidate.path === file.path)!.content,
      );
    }
  });

  it('type-checks with its own tsconfig', async () => {
    await expect(typeCheckExample(BROWSER_URQL_EXAMPLE)).resolves.toBe('');
  });

  describe('in Chromium against the server', () => {
    let started: StartedApp;
    let site: { server: Server; url: string };
    let browser: Browser;

    beforeAll(async () => {
      // No CORS_ORIGINS: the page reaches the gateway over the WebSocket only, which browsers do not check for CORS.
      [started, site, browser] = await Promise.all([
        startApp({ LLAMA_CONTEXT_SIZE: '1024' }),
        bundleExample().then(serveExample),
        chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS }),
      ]);
    });

    afterAll(async () => {
      await browser?.close();
      await started?.stop();
      await new Promise((resolve) => site?.server.close(resolve));
    });

    it('streams a chat into the page over the WebSocket alone, the same text as a direct request', async () => {
      const page = await browser.newPage();
      const gatewayRequests: string[] = [];
      const webSockets: string[] = [];
      const consoleErrors: string[] = [];
      let deltasSeen = 0;
      page.on('request', (request) => {
        if (request.url().startsWith(started.url)) gatewayRequests.push(request.url());
      });
      page.on('websocket', (socket) => {
        webSockets.push(socket.url());
        socket.on('framereceived', (frame) => {
          if (typeof frame.payload === 'string' && frame.payload.includes('"ChatTokenDelta"')) deltasSeen += 1;
        });
      });
      page.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text());
      });
      page.on('pageerror', (error) => consoleErrors.push(error.message));

      const query = new URLSearchParams({ gateway: started.webSocketUrl, model: CHAT_MODEL });
      await page.goto(`${site.url}/?${query}`);
      await page.locator('body[data-state="ready"]').waitFor();
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('body[data-state="completed"]').waitFor();

      const story = await page.locator('#story').textContent();
      const status = await page.locator('#status').textContent();
      const client = createWebSocketClient(started.webSocketUrl);
      const results = await collectWebSocket(
        client,
        'subscription ($input: ChatCompletionInput!) { chatCompletion(input: $input) { __typename ... on ChatCompletionCompleted { text finishReason usage { completionTokens } } } }',
        { input: { messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 128, model: CHAT_MODEL } },
      );
      await client.dispose();
      const completed = results.map((result) => result.data!.chatCompletion).find((event) => event.__typename === 'ChatCompletionCompleted');

      expect(story!.length).toBeGreaterThan(0);
      expect(story).toBe(completed.text);
      expect(status).toBe(`Completed: ${completed.finishReason}, ${completed.usage.completionTokens} tokens.`);
      expect(deltasSeen).toBeGreaterThan(0);
      expect(webSockets).toEqual([started.webSocketUrl]);
      expect(gatewayRequests).toEqual([]);
      expect(consoleErrors).toEqual([]);
      await page.close();
    });
  });
});
