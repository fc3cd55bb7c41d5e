/**
 * A fake Pollinations image server (`docs/protocols.md` §4): a real `node:http`
 * server on 127.0.0.1 (random port).
 *
 * - `GET /prompt/{url-encoded prompt}?width=…&height=…&model=…&seed=…&nologo=true` → the image
 *   bytes (`image/jpeg` like Pollinations, or `image/png`), a solid colour picked from the seed, of
 *   the requested size (or `options.renderSize`); with the `redirect` scenario first a `302` to
 *   `/image/{id}`, which then serves the bytes.
 * - `GET /models` → `["flux","turbo"]` (changeable with `setModels`).
 *
 * ## Choosing what a prompt request gets (first match wins)
 * `setScenario(scenario | (request) => scenario)` until `setScenario(undefined)`, then
 * `options.defaultScenario`, else `{ type: 'ok' }`.
 *
 * ## Observing the client
 * `requests` records every request (`path`, decoded `prompt`, `query` parameters, lower-cased
 * `headers`). `servedBytes(request)` gives the exact image bytes sent for a prompt request (also
 * when they were sent after a redirect). `waitForClientClose(n)` resolves once `n` responses were
 * closed by the client before the server finished them; closes caused by `close()` do not count.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createJpeg, createPng, type RGB } from './test-images.js';

/** The image format the fake serves: `jpeg` (`image/jpeg`, what Pollinations sends) or `png`. */
export type FakeImageFormat = 'jpeg' | 'png';

/**
 * What the fake does with one prompt request. Durations in ms.
 * - `ok`: 200 with the image (`format`, default `jpeg`); `contentType` overrides the header; with
 *   `hold`, nothing is sent before that promise settles (e.g. until all of `n` requests arrived).
 * - `redirect`: `status` (default 302) with `Location: /image/{id}`; that URL serves the image.
 * - `http-error`: `status` with `body` (default a JSON `{"error":"…"}`), `contentType` and extra `headers`
 *   (e.g. `Retry-After`).
 * - `not-an-image`: 200 with an HTML page but `Content-Type: image/jpeg`.
 * - `hang`: never answers (until the client leaves or `close()`).
 * - `slow`: headers and the first half of the image at once, the rest after `delayMs` (default 50).
 */
export type FakePollinationsScenario =
  | { type: 'ok'; format?: FakeImageFormat; contentType?: string; hold?: Promise<unknown> }
  | { type: 'redirect'; format?: FakeImageFormat; status?: 301 | 302 | 303 | 307 | 308 }
  | { type: 'http-error'; status: number; body?: string; contentType?: string; headers?: Record<string, string> }
  | { type: 'not-an-image'; body?: string }
  | { type: 'hang' }
  | { type: 'slow'; delayMs?: number; format?: FakeImageFormat };

/** One request the fake received. */
export interface FakePollinationsRequest {
  /** 1, 2, … in arrival order. */
  id: number;
  method: string;
  /** The path as sent, without the query (still URL-encoded). */
  path: string;
  /** The decoded prompt, for `/prompt/…` requests. */
  prompt?: string;
  /** The query parameters (last value wins). */
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** The scenario a prompt request got. */
  scenario?: FakePollinationsScenario;
  /** Resolves when the response is over: `'finished'`, `'client-closed'` (client left early) or `'server-closed'`. */
  ended: Promise<'finished' | 'client-closed' | 'server-closed'>;
}

/** What `GET /models` answers: a list of ids, an error status, or `'hang'` (never answers). */
export type FakePollinationsModels = string[] | { status: number; body?: string } | 'hang';

/** Options of {@link startFakePollinations}. */
export interface FakePollinationsOptions {
  /** Scenario for prompt requests nothing else chose. Default `{ type: 'ok' }`. */
  defaultScenario?: FakePollinationsScenario;
  /** Serve images of this size instead of the requested one (pixels), to keep tests fast. */
  renderSize?: { width: number; height: number };
}

/** A running fake Pollinations server. */
export interface FakePollinations {
  /** `http://127.0.0.1:<port>` (the image base URL). */
  baseURL: string;
  /** Every request received, in order. */
  requests: FakePollinationsRequest[];
  /** `GET /prompt/…` requests only. */
  promptRequests(): FakePollinationsRequest[];
  /** The exact image bytes sent for a prompt request (directly or after its redirect); undefined when none were sent. */
  servedBytes(request: FakePollinationsRequest): Buffer | undefined;
  /** How many responses the client closed before the server finished them. */
  closedRequests(): number;
  /** Resolves once `count` (default 1) client closes happened since start. */
  waitForClientClose(count?: number): Promise<void>;
  /** Resolves with the `count`-th (default 1st) prompt request once it arrived. */
  waitForPromptRequest(count?: number): Promise<FakePollinationsRequest>;
  /** Forces a scenario (or a function of the request) for following prompt requests; `undefined` restores the default. */
  setScenario(scenario: FakePollinationsScenario | ((request: FakePollinationsRequest) => FakePollinationsScenario) | undefined): void;
  /** Changes what `GET /models` answers. */
  setModels(models: FakePollinationsModels): void;
  /** Ends every open connection (hanging ones included) and stops listening. */
  close(): Promise<void>;
}

/** A colour that depends on the seed, so images of different seeds differ. */
export function colourForSeed(seed: number): RGB {
  return [(seed * 67 + 40) % 256, (seed * 131 + 90) % 256, (seed * 29 + 160) % 256];
}

/** Reads a positive whole number of pixels from a query value, or the fallback. */
function side(value: string | undefined, fallback: number): number {
  const number = Number(value);
  return Number.isInteger(number) && number > 0 ? Math.min(number, 2048) : fallback;
}

/**
 * Starts a fake Pollinations image server on 127.0.0.1, port 0. See the module comment.
 * Always `await fake.close()` (e.g. in `afterEach`): hanging requests never end on their own.
 */
export async function startFakePollinations(options: FakePollinationsOptions = {}): Promise<FakePollinations> {
  const requests: FakePollinationsRequest[] = [];
  const promptRequestList: FakePollinationsRequest[] = [];
  const served = new Map<number, Buffer>();
  /** Images waiting behind a redirect: `/image/{id}` → the prompt request id and its bytes. */
  const redirected = new Map<string, { promptRequestId: number; bytes: Buffer; contentType: string }>();
  let forcedScenario: FakePollinationsScenario | ((request: FakePollinationsRequest) => FakePollinationsScenario) | undefined;
  let models: FakePollinationsModels = ['flux', 'turbo'];
  let closing = false;
  let clientCloses = 0;
  let requestCounter = 0;
  const closeWaiters: Array<{ count: number; resolve: () => void }> = [];
  const promptWaiters: Array<{ count: number; resolve: (request: FakePollinationsRequest) => void }> = [];
  const timers = new Set<NodeJS.Timeout>();

  const chooseScenario = (recorded: FakePollinationsRequest): FakePollinationsScenario => {
    if (forcedScenario) return typeof forcedScenario === 'function' ? forcedScenario(recorded) : forcedScenario;
    return options.defaultScenario ?? { type: 'ok' };
  };

  /** The image for a prompt request: its size and seed decide the pixels. */
  const renderImage = (recorded: FakePollinationsRequest, format: FakeImageFormat): { bytes: Buffer; contentType: string } => {
    const width = options.renderSize?.width ?? side(recorded.query.width, 1024);
    const height = options.renderSize?.height ?? side(recorded.query.height, 1024);
    const colour = colourForSeed(Number(recorded.query.seed ?? 0) || 0);
    return format === 'png'
      ? { bytes: createPng(width, height, colour), contentType: 'image/png' }
      : { bytes: createJpeg(width, height, colour), contentType: 'image/jpeg' };
  };

  const sendBytes = (response: ServerResponse, status: number, bytes: Buffer, headers: Record<string, string | number>) => {
    response.writeHead(status, { 'Content-Length': bytes.byteLength, 'Cache-Control': 'public, max-age=31536000', ...headers });
    response.end(bytes);
  };

  const handlePrompt = (response: ServerResponse, recorded: FakePollinationsRequest) => {
    const scenario = chooseScenario(recorded);
    recorded.scenario = scenario;
    switch (scenario.type) {
      case 'hang':
        return;
      case 'http-error': {
        const body = scenario.body ?? JSON.stringify({ error: `fake pollinations failed with ${scenario.status}` });
        sendBytes(response, scenario.status, Buffer.from(body), {
          'Content-Type': scenario.contentType ?? 'application/json',
          ...scenario.headers,
        });
        return;
      }
      case 'not-an-image': {
        const bytes = Buffer.from(scenario.body ?? '<!DOCTYPE html><html><body><h1>Queue full, try again</h1></body></html>');
        served.set(recorded.id, bytes);
        sendBytes(response, 200, bytes, { 'Content-Type': 'image/jpeg' });
        return;
      }
      case 'redirect': {
        const image = renderImage(recorded, scenario.format ?? 'jpeg');
        const imageId = `${recorded.id}-${Math.random().toString(36).slice(2, 10)}`;
        redirected.set(imageId, { promptRequestId: recorded.id, ...image });
        response.writeHead(scenario.status ?? 302, { Location: `/image/${imageId}`, 'Content-Length': 0 });
        response.end();
        return;
      }
      case 'slow': {
        const { bytes, contentType } = renderImage(recorded, scenario.format ?? 'jpeg');
        served.set(recorded.id, bytes);
        const half = Math.floor(bytes.byteLength / 2);
        response.writeHead(200, { 'Content-Type': contentType, 'Content-Length': bytes.byteLength });
        response.write(bytes.subarray(0, half));
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!response.destroyed) response.end(bytes.subarray(half));
        }, scenario.delayMs ?? 50);
        timers.add(timer);
        return;
      }
      case 'ok': {
        const send = () => {
          if (response.destroyed) return;
          const { bytes, contentType } = renderImage(recorded, scenario.format ?? 'jpeg');
          served.set(recorded.id, bytes);
          sendBytes(response, 200, bytes, { 'Content-Type': scenario.contentType ?? contentType });
        };
        if (scenario.hold) scenario.hold.then(send, send);
        else send();
        return;
      }
    }
  };

  const sendJson = (response: ServerResponse, status: number, body: unknown) => {
    sendBytes(response, status, Buffer.from(JSON.stringify(body)), { 'Content-Type': 'application/json' });
  };

  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    response.on('error', () => {});
    request.on('error', () => {});
    request.resume();
    const url = new URL(request.url ?? '/', 'http://fake.invalid');
    let resolveEnded!: (how: 'finished' | 'client-closed' | 'server-closed') => void;
    const recorded: FakePollinationsRequest = {
      id: ++requestCounter,
      method: request.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...request.headers },
      ended: new Promise((resolve) => (resolveEnded = resolve)),
    };
    requests.push(recorded);
    response.on('close', () => {
      if (response.writableFinished) return resolveEnded('finished');
      if (closing) return resolveEnded('server-closed');
      clientCloses += 1;
      resolveEnded('client-closed');
      for (const waiter of [...closeWaiters]) {
        if (clientCloses >= waiter.count) {
          closeWaiters.splice(closeWaiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    });

    if (request.method === 'GET' && url.pathname.startsWith('/prompt/')) {
      recorded.prompt = decodeURIComponent(url.pathname.slice('/prompt/'.length));
      promptRequestList.push(recorded);
      for (const waiter of [...promptWaiters]) {
        if (promptRequestList.length >= waiter.count) {
          promptWaiters.splice(promptWaiters.indexOf(waiter), 1);
          waiter.resolve(promptRequestList[waiter.count - 1]!);
        }
      }
      handlePrompt(response, recorded);
      return;
    }
    if (request.method === 'GET' && url.pathname.startsWith('/image/')) {
      const image = redirected.get(url.pathname.slice('/image/'.length));
      if (!image) return sendJson(response, 404, { error: 'no such image' });
      served.set(image.promptRequestId, image.bytes);
      sendBytes(response, 200, image.bytes, { 'Content-Type': image.contentType });
      return;
    }
    if (request.method === 'GET' && url.pathname === '/models') {
      if (models === 'hang') return;
      if (Array.isArray(models)) return sendJson(response, 200, models);
      sendBytes(response, models.status, Buffer.from(models.body ?? `models failed with ${models.status}`), {
        'Content-Type': 'text/plain; charset=utf-8',
      });
      return;
    }
    sendJson(response, 404, { error: `Unknown request URL: ${request.method} ${url.pathname}` });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}`,
    requests,
    promptRequests: () => [...promptRequestList],
    servedBytes: (request) => served.get(request.id),
    closedRequests: () => clientCloses,
    waitForClientClose(count = 1) {
      if (clientCloses >= count) return Promise.resolve();
      return new Promise<void>((resolve) => closeWaiters.push({ count, resolve }));
    },
    waitForPromptRequest(count = 1) {
      if (promptRequestList.length >= count) return Promise.resolve(promptRequestList[count - 1]!);
      return new Promise<FakePollinationsRequest>((resolve) => promptWaiters.push({ count, resolve }));
    },
    setScenario(scenario) {
      forcedScenario = scenario;
    },
    setModels(next) {
      models = next;
    },
    async close() {
      closing = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
