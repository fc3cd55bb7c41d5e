/**
 * A fake Gradio image Space: a real `node:http` server on 127.0.0.1 (random port) that speaks
 * Gradio's two-step "call" API as `docs/protocols.md` §3 describes it:
 *
 * - `GET /config` → a small Gradio config JSON.
 * - `POST /call/{endpoint}` with `{"data":[…]}` → `{"event_id":"<random hex>"}`.
 * - `GET /call/{endpoint}/{event_id}` → `text/event-stream`, one frame per write:
 *   ```
 *   event: generating
 *   data: null
 *
 *   event: heartbeat
 *   data: null
 *
 *   event: complete
 *   data: [{"path":"/tmp/gradio/<hash>/image.png","url":"<baseURL>/gradio_api/file=/tmp/gradio/<hash>/image.png","size":…,"orig_name":"image.png","mime_type":"image/png","is_stream":false,"meta":{"_type":"gradio.FileData"}}, 1234]
 *
 *   ```
 * - `GET /gradio_api/file=<path>` → the PNG bytes of that image (`image/png`), a real PNG made
 *   with `pngjs` at the requested width × height, filled with a colour derived from prompt and seed.
 *
 * ## Choosing what a call gets (first match wins; chosen at the POST, kept for all its reads)
 * 1. `setScenario(scenario | (call) => scenario)` — every following call until `setScenario(undefined)`.
 * 2. The prompt (the first string of `data`) starting with `scenario:<type>`, optionally with a
 *    query string: `scenario:error`, `scenario:error-null`, `scenario:ends-early-once`,
 *    `scenario:never-completes`, `scenario:hang`, `scenario:http-error?status=429&retryAfter=3`,
 *    `scenario:error?message=Out%20of%20memory`, `scenario:no-response`.
 * 3. `options.defaultScenario`, else `complete`.
 *
 * ## Where the fake reads width, height, prompt and seed
 * From `data` by index, per endpoint: `options.layouts[endpoint]`, else the places of `prompt`,
 * `seed`, `randomize_seed`, `width` and `height` in the endpoint's signature (below), else the
 * FLUX.1-schnell layout `[prompt, seed, randomize_seed, width, height, steps]`. The seed reported in
 * `complete` is the one asked for when `randomize_seed` is false, else a pseudo-random one.
 *
 * ## The endpoints a Space has
 * With `options.signatures` (the "Use via API" signatures of `./gradio-space-apis.ts`), the fake
 * serves only those endpoints, as a Space does: a POST to another one is a 404, and a call whose
 * `data` does not fit the signature (count, or an item's JSON type) gets the `error` scenario with
 * the mismatch as its message. Without, any endpoint name is served.
 *
 * ## Observing the client
 * `requests` (the POSTs with parsed body and lower-cased headers), `resultRequests` (the GETs of
 * result streams), `fileRequests`, `configRequests`; `waitForResultRequest(n)` resolves at the
 * n-th result GET; `waitForClientClose(n)` once `n` responses were closed by the client before the
 * server finished them (closes caused by `close()` are not counted). With `options.token`, a
 * request without `Authorization: Bearer <token>` gets 401 (POSTs are still recorded).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PNG } from 'pngjs';
import { describeDataMismatch, type GradioEndpointSignature } from './gradio-space-apis.js';

/** The names of the built-in behaviours; also accepted in the prompt as `scenario:<type>`. */
export type FakeGradioScenarioType =
  | 'complete'
  | 'error'
  | 'error-null'
  | 'ends-early-once'
  | 'never-completes'
  | 'hang'
  | 'http-error'
  | 'no-response';

/**
 * What the fake does with one call. Durations in ms.
 * - `complete`: `generating` × `generatingEvents` (default 2, data `generatingData[i]` or null),
 *   `heartbeat`, then `complete` with `[fileObject, seed]`. `seed` overrides the reported seed,
 *   `omitUrl` sends `url: null` (only `path`), `mimeType` overrides `mime_type` (null allowed).
 * - `error`: `generating`, then `event: error` with `data: "<message>"` (default "GPU quota exceeded");
 *   with `afterResultRequests`, the error waits until the fake has received that many result GETs
 *   (so tests of parallel calls know the other streams are open when it fails).
 * - `error-null`: `generating`, then `event: error` with `data: null`.
 * - `ends-early-once`: the first read sends `generating` and ends without `complete`; later reads are `complete`.
 * - `never-completes`: every read sends `generating`, `heartbeat` and ends without `complete`.
 * - `hang`: every read sends `generating`, then a `heartbeat` every `heartbeatMs` (default 50)
 *   and never ends (until the client leaves or `close()`).
 * - `http-error`: the POST answers `status` (default 500) with `body` (default `{"error":"…"}`)
 *   and `headers`; status 429 sends `Retry-After: retryAfter` (default `3` seconds).
 * - `no-response`: the POST never gets response headers (for connect timeouts).
 */
export type FakeGradioScenario =
  | {
      type: 'complete';
      generatingEvents?: number;
      generatingData?: unknown[];
      seed?: number;
      omitUrl?: boolean;
      mimeType?: string | null;
    }
  | { type: 'error'; message?: string; afterResultRequests?: number }
  | { type: 'error-null' }
  | { type: 'ends-early-once' }
  | { type: 'never-completes' }
  | { type: 'hang'; heartbeatMs?: number }
  | { type: 'http-error'; status?: number; body?: unknown; headers?: Record<string, string>; retryAfter?: string | number }
  | { type: 'no-response' };

/** Where the fake finds the values it needs in a call's `data` list (indexes). */
export interface FakeGradioLayout {
  prompt: number;
  width: number;
  height: number;
  /** Index of the seed asked for, when the endpoint takes one. */
  seed?: number;
  /** Index of `randomize_seed`, when the endpoint takes one. */
  randomizeSeed?: number;
}

/** The FLUX.1-schnell `infer` layout: `[prompt, seed, randomize_seed, width, height, steps]`. */
export const FLUX_LAYOUT: FakeGradioLayout = { prompt: 0, seed: 1, randomizeSeed: 2, width: 3, height: 4 };

/** One `POST /call/{endpoint}` the fake received. */
export interface RecordedGradioCall {
  endpoint: string;
  /** Lower-cased header names. */
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (`{"data":[…]}`), or the raw text when it was not JSON. */
  body: unknown;
  /** The event id answered; undefined when the POST failed. */
  eventId?: string;
  scenario: FakeGradioScenario;
  /** How many times its result stream was read. */
  reads: number;
}

/** One `GET /call/{endpoint}/{event_id}` the fake received. */
export interface RecordedResultRequest {
  endpoint: string;
  eventId: string;
  headers: Record<string, string | string[] | undefined>;
  /** 1 for the first read of this event id, 2 for the second, … */
  readNumber: number;
}

/** One `GET /gradio_api/file=…` the fake received. */
export interface RecordedFileRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeGradioSpaceOptions {
  /** When set, every request must carry `Authorization: Bearer <token>`; others get 401 echoing the token received. */
  token?: string;
  /** Layouts per endpoint name; endpoints not listed use their signature's, else {@link FLUX_LAYOUT}. */
  layouts?: Record<string, FakeGradioLayout>;
  /** The only endpoints served, each call's `data` checked against its signature (see the module comment). */
  signatures?: GradioEndpointSignature[];
  defaultScenario?: FakeGradioScenario;
  /** Status of `GET /config` (default 200). */
  configStatus?: number;
}

export interface FakeGradioSpace {
  /** `http://127.0.0.1:<port>` — no trailing slash. */
  baseURL: string;
  /** Every `POST /call/{endpoint}`, in order. */
  requests: RecordedGradioCall[];
  /** Every result stream `GET`, in order. */
  resultRequests: RecordedResultRequest[];
  fileRequests: RecordedFileRequest[];
  /** How many `GET /config` were answered. */
  configRequests(): number;
  setScenario(scenario: FakeGradioScenario | ((call: RecordedGradioCall) => FakeGradioScenario) | undefined): void;
  /** Resolves with the `count`-th result GET (1-based, counted since start). */
  waitForResultRequest(count?: number): Promise<RecordedResultRequest>;
  /** Resolves once `count` responses (default 1) were closed by the client before the server finished them. */
  waitForClientClose(count?: number): Promise<void>;
  /** Client closes so far. */
  clientCloses(): number;
  /** The exact bytes served for a file path or its full `…/gradio_api/file=…` URL; undefined when unknown. */
  imageBytes(pathOrUrl: string): Buffer | undefined;
  close(): Promise<void>;
}

/** Where `prompt`, `seed`, `randomize_seed`, `width` and `height` are in a signature's parameters. */
function layoutOf(signature: GradioEndpointSignature): FakeGradioLayout {
  const indexOf = (name: string) => {
    const index = signature.parameters.findIndex((parameter) => parameter.name === name);
    return index < 0 ? undefined : index;
  };
  const seed = indexOf('seed');
  const randomizeSeed = indexOf('randomize_seed');
  return {
    prompt: indexOf('prompt') ?? 0,
    width: indexOf('width') ?? -1,
    height: indexOf('height') ?? -1,
    ...(seed !== undefined && { seed }),
    ...(randomizeSeed !== undefined && { randomizeSeed }),
  };
}

/** A base URL where nothing listens (a port that was free a moment ago). */
export async function unusedGradioBaseURL(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const SCENARIO_TYPES = new Set<FakeGradioScenarioType>([
  'complete',
  'error',
  'error-null',
  'ends-early-once',
  'never-completes',
  'hang',
  'http-error',
  'no-response',
]);

/** `scenario:http-error?status=429&retryAfter=3 a cat` → the scenario, or undefined. */
function scenarioFromPrompt(prompt: unknown): FakeGradioScenario | undefined {
  if (typeof prompt !== 'string') return undefined;
  const match = /^scenario:([a-z-]+)(\?\S*)?/.exec(prompt.trim());
  if (!match || !SCENARIO_TYPES.has(match[1] as FakeGradioScenarioType)) return undefined;
  const type = match[1] as FakeGradioScenarioType;
  const parameters = new URLSearchParams(match[2]?.slice(1) ?? '');
  const number = (name: string) => (parameters.has(name) ? Number(parameters.get(name)) : undefined);
  switch (type) {
    case 'complete': {
      const seed = number('seed');
      return { type, ...(seed !== undefined && { seed }), ...(parameters.get('omitUrl') === 'true' && { omitUrl: true }) };
    }
    case 'error': {
      const message = parameters.get('message');
      return message === null ? { type } : { type, message };
    }
    case 'hang': {
      const heartbeatMs = number('heartbeatMs');
      return heartbeatMs === undefined ? { type } : { type, heartbeatMs };
    }
    case 'http-error': {
      const status = number('status');
      const retryAfter = parameters.get('retryAfter');
      const message = parameters.get('message');
      return {
        type,
        ...(status !== undefined && { status }),
        ...(retryAfter !== null && { retryAfter }),
        ...(message !== null && { body: { error: message } }),
      };
    }
    default:
      return { type };
  }
}

/** A side in pixels from a data item, or the fallback. */
function side(value: unknown, fallback = 64): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 4096 ? value : fallback;
}

/** A PNG of `width` × `height` filled with a colour derived from `key`. */
function makePng(width: number, height: number, key: string): Buffer {
  const digest = createHash('sha256').update(key).digest();
  const png = new PNG({ width, height });
  for (let offset = 0; offset < png.data.length; offset += 4) {
    png.data[offset] = digest[0]!;
    png.data[offset + 1] = digest[1]!;
    png.data[offset + 2] = digest[2]!;
    png.data[offset + 3] = 255;
  }
  return PNG.sync.write(png);
}

/** Lets the previous write leave as its own chunk. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Starts a fake Gradio Space on 127.0.0.1, port 0. See the module comment for the wire format,
 * how scenarios are chosen and how to observe the client.
 * Always `await space.close()` (e.g. in `afterEach`): hanging streams never end on their own.
 */
export async function startFakeGradioSpace(options: FakeGradioSpaceOptions = {}): Promise<FakeGradioSpace> {
  const requests: RecordedGradioCall[] = [];
  const resultRequests: RecordedResultRequest[] = [];
  const fileRequests: RecordedFileRequest[] = [];
  const calls = new Map<string, RecordedGradioCall>();
  const files = new Map<string, Buffer>();
  let forcedScenario: FakeGradioScenario | ((call: RecordedGradioCall) => FakeGradioScenario) | undefined;
  let configRequestCount = 0;
  let closing = false;
  let closes = 0;
  let randomSeedCounter = 0;
  const closeWaiters: Array<{ count: number; resolve: () => void }> = [];
  const resultWaiters: Array<{ count: number; resolve: (request: RecordedResultRequest) => void }> = [];
  const openTimers = new Set<NodeJS.Timeout>();
  let baseURL = '';

  const sendJson = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    response.end(text);
  };

  const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

  const waitForResultRequest = (count = 1): Promise<RecordedResultRequest> => {
    if (resultRequests.length >= count) return Promise.resolve(resultRequests[count - 1]!);
    return new Promise((resolve) => resultWaiters.push({ count, resolve }));
  };

  const signatureOf = (endpoint: string) => options.signatures?.find((signature) => signature.name === endpoint);
  const layoutFor = (endpoint: string): FakeGradioLayout => {
    const given = options.layouts?.[endpoint];
    const signature = signatureOf(endpoint);
    return given ?? (signature ? layoutOf(signature) : FLUX_LAYOUT);
  };

  /** The `complete` output list of a call: `[fileObject, seed]`; stores the PNG it points to. */
  const completeOutput = (call: RecordedGradioCall, scenario: Extract<FakeGradioScenario, { type: 'complete' }>): unknown[] => {
    const data = ((call.body as { data?: unknown[] } | undefined)?.data ?? []) as unknown[];
    const layout = layoutFor(call.endpoint);
    const askedSeed = layout.seed === undefined ? undefined : data[layout.seed];
    const randomize = layout.randomizeSeed === undefined ? true : data[layout.randomizeSeed] !== false;
    const seed =
      scenario.seed ??
      (!randomize && typeof askedSeed === 'number' ? askedSeed : 100_000 + ((++randomSeedCounter * 7_919) % 900_000));
    const prompt = String(data[layout.prompt] ?? '');
    const width = side(data[layout.width]);
    const height = side(data[layout.height]);
    const hash = createHash('sha1').update(`${call.eventId}`).digest('hex');
    const path = `/tmp/gradio/${hash}/image.png`;
    const bytes = makePng(width, height, `${prompt}|${seed}`);
    files.set(path, bytes);
    const fileObject = {
      path,
      url: scenario.omitUrl ? null : `${baseURL}/gradio_api/file=${path}`,
      size: bytes.byteLength,
      orig_name: 'image.png',
      mime_type: scenario.mimeType === undefined ? 'image/png' : scenario.mimeType,
      is_stream: false,
      meta: { _type: 'gradio.FileData' },
    };
    return [fileObject, seed];
  };

  const handleResult = async (response: ServerResponse, call: RecordedGradioCall, readNumber: number) => {
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
    });
    response.flushHeaders();
    const open = () => !response.destroyed && !response.writableEnded;
    /** Writes one frame (then yields a turn); false once the client is gone. */
    const write = async (text: string): Promise<boolean> => {
      if (!open()) return false;
      response.write(text);
      await nextTurn();
      return open();
    };
    const end = (text = '') => {
      if (open()) response.end(text);
    };

    const scenario = call.scenario;
    switch (scenario.type) {
      case 'complete': {
        const generating = scenario.generatingEvents ?? 2;
        for (let index = 0; index < generating; index++) {
          if (!(await write(frame('generating', scenario.generatingData?.[index] ?? null)))) return;
        }
        if (!(await write(frame('heartbeat', null)))) return;
        end(frame('complete', completeOutput(call, scenario)));
        return;
      }
      case 'error':
        if (!(await write(frame('generating', null)))) return;
        if (scenario.afterResultRequests !== undefined) await waitForResultRequest(scenario.afterResultRequests);
        end(frame('error', scenario.message ?? 'GPU quota exceeded'));
        return;
      case 'error-null':
        if (!(await write(frame('generating', null)))) return;
        end(frame('error', null));
        return;
      case 'ends-early-once':
        if (readNumber === 1) {
          if (!(await write(frame('generating', null)))) return;
          end();
          return;
        }
        if (!(await write(frame('generating', null)))) return;
        end(frame('complete', completeOutput(call, { type: 'complete' })));
        return;
      case 'never-completes':
        if (!(await write(frame('generating', null)))) return;
        if (!(await write(frame('heartbeat', null)))) return;
        end();
        return;
      case 'hang': {
        if (!(await write(frame('generating', null)))) return;
        const timer = setInterval(() => {
          if (open()) response.write(frame('heartbeat', null));
        }, scenario.heartbeatMs ?? 50);
        openTimers.add(timer);
        response.on('close', () => {
          clearInterval(timer);
          openTimers.delete(timer);
        });
        return;
      }
      case 'http-error':
      case 'no-response':
        // Only the POST fails in these scenarios; a read of its (unknown) event id is a 404.
        sendJson(response, 404, { detail: 'Not Found' });
        return;
    }
  };

  const handle = (request: IncomingMessage, response: ServerResponse, rawBody: string) => {
    const url = request.url ?? '/';
    const headers = { ...request.headers };
    const method = request.method ?? 'GET';

    const authorized = options.token === undefined || request.headers.authorization === `Bearer ${options.token}`;
    /** HF's answer to a bad token; echoes what it received (a worst case for redaction). */
    const rejectToken = () => {
      const received = (request.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
      sendJson(response, 401, { error: `Invalid credentials in Authorization header: ${received}` });
    };
    const callMatch = /^\/call\/([A-Za-z0-9_-]+)$/.exec(url.split('?')[0]!);
    if (!authorized && !(method === 'POST' && callMatch)) return rejectToken();

    if (method === 'GET' && url.startsWith('/gradio_api/file=')) {
      const path = decodeURIComponent(url.slice('/gradio_api/file='.length));
      fileRequests.push({ path, headers });
      const bytes = files.get(path);
      if (!bytes) return sendJson(response, 404, { detail: 'File not found' });
      response.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': bytes.byteLength });
      response.end(bytes);
      return;
    }

    const path = url.split('?')[0]!;
    if (method === 'GET' && path === '/config') {
      configRequestCount += 1;
      const status = options.configStatus ?? 200;
      if (status !== 200) return sendJson(response, status, { error: `config answered ${status}` });
      sendJson(response, 200, {
        version: '5.9.1',
        mode: 'interface',
        title: 'Fake Gradio image space',
        protocol: 'sse_v3',
        components: [],
        dependencies: [...new Set(options.signatures?.map((signature) => signature.name) ?? ['infer', ...Object.keys(options.layouts ?? {})])].map(
          (name, id) => ({ id, api_name: name }),
        ),
      });
      return;
    }

    const resultMatch = /^\/call\/([A-Za-z0-9_-]+)\/([^/]+)$/.exec(path);
    if (method === 'GET' && resultMatch) {
      const endpoint = resultMatch[1]!;
      const eventId = decodeURIComponent(resultMatch[2]!);
      const call = calls.get(eventId);
      if (!call || call.endpoint !== endpoint) return sendJson(response, 404, { detail: 'Event ID not found' });
      call.reads += 1;
      const recorded: RecordedResultRequest = { endpoint, eventId, headers, readNumber: call.reads };
      resultRequests.push(recorded);
      for (const waiter of [...resultWaiters]) {
        if (resultRequests.length >= waiter.count) {
          resultWaiters.splice(resultWaiters.indexOf(waiter), 1);
          waiter.resolve(resultRequests[waiter.count - 1]!);
        }
      }
      handleResult(response, call, call.reads).catch(() => response.destroy());
      return;
    }

    if (method === 'POST' && callMatch) {
      let body: unknown = rawBody;
      try {
        body = JSON.parse(rawBody) as unknown;
      } catch {
        // keep the raw text
      }
      const call: RecordedGradioCall = { endpoint: callMatch[1]!, headers, body, scenario: { type: 'complete' }, reads: 0 };
      requests.push(call);
      if (!authorized) return rejectToken();
      const signature = signatureOf(call.endpoint);
      if (options.signatures && !signature) return sendJson(response, 404, { detail: 'Not Found' });
      const data = (body as { data?: unknown } | null)?.data;
      if (typeof body !== 'object' || body === null || !Array.isArray(data)) {
        return sendJson(response, 422, { detail: [{ type: 'missing', loc: ['body', 'data'], msg: 'Field required' }] });
      }
      const layout = layoutFor(call.endpoint);
      const mismatch = signature && describeDataMismatch(signature, data);
      call.scenario = mismatch
        ? { type: 'error', message: mismatch }
        : ((forcedScenario && (typeof forcedScenario === 'function' ? forcedScenario(call) : forcedScenario)) ??
          scenarioFromPrompt(data[layout.prompt]) ??
          options.defaultScenario ?? { type: 'complete' });
      if (call.scenario.type === 'no-response') return; // no headers, ever: until the client leaves or close()
      if (call.scenario.type === 'http-error') {
        const status = call.scenario.status ?? 500;
        const extraHeaders: Record<string, string> = { ...call.scenario.headers };
        if (status === 429) extraHeaders['Retry-After'] = String(call.scenario.retryAfter ?? 3);
        sendJson(response, status, call.scenario.body ?? { error: `The space failed with status ${status}` }, extraHeaders);
        return;
      }
      call.eventId = randomBytes(16).toString('hex');
      calls.set(call.eventId, call);
      sendJson(response, 200, { event_id: call.eventId });
      return;
    }

    sendJson(response, 404, { detail: 'Not Found' });
  };

  const server: Server = createServer((request, response) => {
    response.on('error', () => {});
    request.on('error', () => {});
    response.on('close', () => {
      if (response.writableFinished || closing) return;
      closes += 1;
      for (const waiter of [...closeWaiters]) {
        if (closes >= waiter.count) {
          closeWaiters.splice(closeWaiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    });
    const pieces: Buffer[] = [];
    request.on('data', (piece: Buffer) => pieces.push(piece));
    request.on('end', () => handle(request, response, Buffer.concat(pieces).toString('utf8')));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  baseURL = `http://127.0.0.1:${port}`;

  return {
    baseURL,
    requests,
    resultRequests,
    fileRequests,
    configRequests: () => configRequestCount,
    setScenario(scenario) {
      forcedScenario = scenario;
    },
    waitForResultRequest,
    waitForClientClose(count = 1) {
      if (closes >= count) return Promise.resolve();
      return new Promise<void>((resolve) => closeWaiters.push({ count, resolve }));
    },
    clientCloses: () => closes,
    imageBytes(pathOrUrl) {
      const index = pathOrUrl.indexOf('/gradio_api/file=');
      const path = index >= 0 ? decodeURIComponent(pathOrUrl.slice(index + '/gradio_api/file='.length)) : pathOrUrl;
      return files.get(path);
    },
    async close() {
      closing = true;
      for (const timer of openTimers) clearInterval(timer);
      openTimers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
