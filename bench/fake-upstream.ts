/**
 * The benchmark's own fake OpenAI-compatible upstream. It runs as a separate process
 * (`bench/fake-upstream-process.ts`) so that its CPU time is not charged to the client or to the
 * gateway.
 *
 * It speaks the chat-completions streaming format of `docs/protocols.md` §1–§2:
 * `POST /v1/chat/completions` with `stream: true` answers `text/event-stream`, one
 * `data: {chat.completion.chunk}\n\n` per `write` call — first the role chunk
 * (`delta: {role: "assistant", content: ""}`), then one chunk per token, then a chunk with
 * `finish_reason: "stop"`, a usage chunk (`choices: []`, when `stream_options.include_usage`),
 * and `data: [DONE]`. A request without `stream: true` gets a plain `chat.completion`.
 * `GET /v1/models` lists the one model `bench`. Paths work with or without the `/v1` prefix.
 *
 * ## Shape of a stream (first match wins, for each setting)
 * 1. The model name's query string: `bench?tokens=64&firstTokenDelayMs=5&gapMs=1&hold=1`.
 * 2. The request URL's query string: `POST /v1/chat/completions?tokens=16`.
 * 3. Environment: `BENCH_UPSTREAM_TOKENS`, `BENCH_UPSTREAM_FIRST_TOKEN_DELAY_MS`, `BENCH_UPSTREAM_GAP_MS`.
 * 4. Defaults: 64 tokens, no delay before the first token, no gap: the chunks are written back
 *    to back, each in its own `write` call.
 *
 * `hold=1` holds the stream after the role chunk until released ({@link BenchUpstream.release};
 * the process's `release` command), then goes on as usual (first-token delay, tokens, gaps): the
 * benchmark opens many streams, measures them open and idle, then lets all of them flow at once. A held stream whose client goes away stops being counted.
 *
 * Tokens are {@link benchTokens}: all different, so a lost, duplicated or reordered token changes
 * the text. Listens on 127.0.0.1 only.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The model id the fake serves (any model name is accepted in requests). */
export const BENCH_MODEL = 'bench';

/** Shape of one fake stream. Durations in ms. */
export interface StreamShape {
  /** Number of content tokens. */
  tokens: number;
  /** Delay between the role chunk and the first token. */
  firstTokenDelayMs: number;
  /** Delay between two tokens. */
  gapMs: number;
  /** Hold the stream after the role chunk until released (see the file's comment). */
  hold: boolean;
}

/** Defaults of {@link StreamShape}: 64 tokens, no delays. */
export const DEFAULT_STREAM_SHAPE: StreamShape = { tokens: 64, firstTokenDelayMs: 0, gapMs: 0, hold: false };

/**
 * The `count` tokens of a bench stream: `w0`, ` w1`, ` w2`, … — all different, so the joined text
 * tells whether any token was lost, duplicated or reordered.
 */
export function benchTokens(count: number): string[] {
  return Array.from({ length: count }, (_, index) => (index === 0 ? 'w0' : ` w${index}`));
}

/** Reads a non-negative number from a query parameter or variable; undefined when absent or invalid. */
export function readNumber(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}

/** Reads the stream-shape settings present in `parameters` (model-name or URL query). */
function shapeFromParameters(parameters: URLSearchParams): Partial<StreamShape> {
  const shape: Partial<StreamShape> = {};
  const tokens = readNumber(parameters.get('tokens'));
  const firstTokenDelayMs = readNumber(parameters.get('firstTokenDelayMs'));
  const gapMs = readNumber(parameters.get('gapMs'));
  if (tokens !== undefined) shape.tokens = Math.floor(tokens);
  if (firstTokenDelayMs !== undefined) shape.firstTokenDelayMs = firstTokenDelayMs;
  if (gapMs !== undefined) shape.gapMs = gapMs;
  if (parameters.get('hold') === '1') shape.hold = true;
  return shape;
}

/** The environment's stream shape over the defaults (`BENCH_UPSTREAM_*`, see the file's comment). */
export function shapeFromEnvironment(environment: Record<string, string | undefined>): StreamShape {
  return {
    tokens: Math.floor(readNumber(environment.BENCH_UPSTREAM_TOKENS) ?? DEFAULT_STREAM_SHAPE.tokens),
    firstTokenDelayMs: readNumber(environment.BENCH_UPSTREAM_FIRST_TOKEN_DELAY_MS) ?? DEFAULT_STREAM_SHAPE.firstTokenDelayMs,
    gapMs: readNumber(environment.BENCH_UPSTREAM_GAP_MS) ?? DEFAULT_STREAM_SHAPE.gapMs,
    hold: false,
  };
}

const delay = (milliseconds: number) => new Promise<void>((resolve) => setTimeout(resolve, milliseconds));

/** Sends a JSON body with a status. */
function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** Sends an OpenAI-style error body. */
function sendError(response: ServerResponse, status: number, message: string): void {
  sendJson(response, status, { error: { message, type: 'invalid_request_error', param: null, code: null } });
}

/** A running fake upstream. */
export interface BenchUpstream {
  port: number;
  /** `http://127.0.0.1:<port>/v1` */
  baseURL: string;
  /** Number of streams held now (`hold=1`, not yet released, client still there). */
  heldCount(): number;
  /** Resolves with the held count once at least `count` streams are held, or after `timeoutMs`. */
  waitHeld(count: number, timeoutMs: number): Promise<number>;
  /** Lets every held stream go on; returns how many there were. */
  release(): number;
  /** Stops listening and ends every open connection. */
  close(): Promise<void>;
}

/**
 * Starts the fake upstream on 127.0.0.1.
 * @param options.port port to listen on, 0 = any free port.
 * @param options.defaults stream shape used where the request names none.
 */
export async function startBenchUpstream(options: { port?: number; defaults?: StreamShape } = {}): Promise<BenchUpstream> {
  const defaults = options.defaults ?? DEFAULT_STREAM_SHAPE;
  let completionCounter = 0;
  /** Releases of the streams held now. */
  const held = new Set<() => void>();
  /** Waiters of `waitHeld`, checked whenever a stream becomes held. */
  const heldWaiters = new Set<{ count: number; resolve: (held: number) => void }>();
  const notifyHeld = () => {
    for (const waiter of heldWaiters) if (held.size >= waiter.count) waiter.resolve(held.size);
  };
  /** Holds until released or until the client goes away. */
  const hold = (response: ServerResponse): Promise<void> =>
    new Promise<void>((resolve) => {
      const release = () => {
        held.delete(release);
        response.off('close', release);
        resolve();
      };
      held.add(release);
      response.once('close', release);
      notifyHeld();
    });
  const tokenCache = new Map<number, string[]>();
  const tokensFor = (count: number): string[] => {
    let tokens = tokenCache.get(count);
    if (!tokens) {
      tokens = benchTokens(count);
      tokenCache.set(count, tokens);
    }
    return tokens;
  };

  const handleChat = async (response: ServerResponse, url: URL, body: unknown): Promise<void> => {
    if (typeof body !== 'object' || body === null) {
      sendError(response, 400, 'We could not parse the JSON body of your request.');
      return;
    }
    const chatBody = body as { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } | null; messages?: unknown };
    const model = typeof chatBody.model === 'string' && chatBody.model !== '' ? chatBody.model : BENCH_MODEL;
    const modelQuery = model.includes('?') ? model.slice(model.indexOf('?') + 1) : '';
    const shape: StreamShape = {
      ...defaults,
      ...shapeFromParameters(url.searchParams),
      ...shapeFromParameters(new URLSearchParams(modelQuery)),
    };
    const tokens = tokensFor(shape.tokens);
    const promptTokens = Array.isArray(chatBody.messages) ? chatBody.messages.length * 8 : 8;
    completionCounter += 1;
    const id = `chatcmpl-bench${completionCounter}`;
    const created = Math.floor(Date.now() / 1000);
    // Every chunk shares this prefix; only the `choices` (and `usage`) part changes.
    const prefix = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,`;

    if (chatBody.stream !== true) {
      sendJson(response, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'stop' }],
        usage: { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length },
      });
      return;
    }

    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    response.flushHeaders();
    const open = () => !response.destroyed && !response.writableEnded;
    const write = (text: string): boolean => {
      if (!open()) return false;
      response.write(text);
      return true;
    };

    if (!write(`${prefix}"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}\n\n`)) return;
    if (shape.hold) await hold(response);
    if (shape.firstTokenDelayMs > 0) await delay(shape.firstTokenDelayMs);
    for (let index = 0; index < tokens.length; index++) {
      if (index > 0 && shape.gapMs > 0) await delay(shape.gapMs);
      const content = JSON.stringify(tokens[index]);
      if (!write(`${prefix}"choices":[{"index":0,"delta":{"content":${content}},"logprobs":null,"finish_reason":null}]}\n\n`)) return;
    }
    write(`${prefix}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n`);
    if (chatBody.stream_options?.include_usage === true) {
      const usage = { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length };
      write(`${prefix}"choices":[],"usage":${JSON.stringify(usage)}}\n\n`);
    }
    write('data: [DONE]\n\n');
    if (open()) response.end();
  };

  const server = createServer((request, response) => {
    request.on('error', () => {});
    response.on('error', () => {});
    const pieces: Buffer[] = [];
    request.on('data', (piece: Buffer) => pieces.push(piece));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const route = url.pathname.replace(/^\/v1(?=\/)/, '');
      if (request.method === 'GET' && route === '/models') {
        sendJson(response, 200, {
          object: 'list',
          data: [{ id: BENCH_MODEL, object: 'model', created: Math.floor(Date.now() / 1000), owned_by: 'bench' }],
        });
        return;
      }
      if (request.method === 'POST' && route === '/chat/completions') {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(pieces).toString('utf8')) as unknown;
        } catch {
          body = undefined;
        }
        handleChat(response, url, body).catch(() => {
          if (!response.headersSent) sendError(response, 500, 'fake upstream failed');
          else response.destroy();
        });
        return;
      }
      sendError(response, 404, `Unknown request URL: ${request.method} ${url.pathname}.`);
    });
  });
  // Idle keep-alive connections go after 10 s: after a ramp level of thousands of streams, the
  // clients' pools (which follow this hint) must not hold thousands of sockets into the next phase.
  server.keepAliveTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A long accept queue: the benchmark opens thousands of connections at once.
    server.listen({ port: options.port ?? 0, host: '127.0.0.1', backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    baseURL: `http://127.0.0.1:${port}/v1`,
    heldCount: () => held.size,
    waitHeld: (count, timeoutMs) =>
      new Promise<number>((resolve) => {
        const waiter = {
          count,
          resolve: (heldNow: number) => {
            clearTimeout(timer);
            heldWaiters.delete(waiter);
            resolve(heldNow);
          },
        };
        const timer = setTimeout(() => waiter.resolve(held.size), timeoutMs);
        heldWaiters.add(waiter);
        notifyHeld();
      }),
    release: () => {
      const releases = [...held];
      for (const release of releases) release();
      return releases.length;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
