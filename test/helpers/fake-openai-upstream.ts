/**
 * A fake OpenAI-compatible upstream: a real `node:http` server on 127.0.0.1 (random port) that
 * speaks the chat-completions SSE wire format of `docs/protocols.md` §1–§2
 * exactly as OpenAI sends it:
 *
 * ```
 * data: {"id":"chatcmpl-…","object":"chat.completion.chunk",…,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}
 * data: {… "choices":[{"index":0,"delta":{"content":"Once"},"finish_reason":null}]}
 * …
 * data: {… "choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
 * data: {… "choices":[],"usage":{"prompt_tokens":…,"completion_tokens":…,"total_tokens":…}}   (when stream_options.include_usage)
 * data: [DONE]
 * ```
 * (each `data:` line followed by a blank line, each chunk in its own `write`), plus
 * `GET /models` → `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`.
 * Paths are accepted with or without a `/v1` prefix; `baseURL` ends in `/v1`.
 *
 * ## Choosing what a request gets (first match wins)
 * 1. `setScenario(scenario | (request) => scenario)` — applies to every following chat request
 *    until `setScenario(undefined)`.
 * 2. `options.scenarios[model]` — per model name.
 * 3. The model name itself, when it is a {@link FakeScenarioType} such as `rate-limited` or
 *    `drop-connection`, optionally with parameters as a query string:
 *    `stream?tokens=64&gapMs=5`, `stall?tokensBefore=2`, `endless?gapMs=20`,
 *    `rate-limited?retryAfterSeconds=3`, `http-error?status=400`, `tool-calls?calls=3&pieceSize=4`,
 *    `reasoning?reasoningTokens=3&field=reasoning`, `echo`. Handy in end-to-end tests where
 *    the model name is the only knob.
 * 4. `options.defaultScenario`, else a normal stream of `options.tokenCount` (default 8) tokens.
 *
 * ## Tool calls, reasoning, echo
 * `tool-calls` streams tool calls as OpenAI does (https://platform.openai.com/docs/api-reference/chat-streaming):
 * the first piece of call `i` is `{"index":i,"id","type":"function","function":{"name","arguments":""}}`
 * (in the role chunk when the turn has no text), then its arguments in pieces
 * `{"index":i,"function":{"arguments":"…"}}`, calls one after another, then `finish_reason: "tool_calls"`.
 * `reasoning` streams `delta.reasoning_content` pieces (gpt4free, DeepSeek; or `delta.reasoning`,
 * OpenRouter) before the text. `echo` answers the JSON of the request body it received as the
 * text. `chunks` streams given deltas as they are. Without `stream: true` each answers one
 * `chat.completion` whose message has `tool_calls` / `reasoning_content`.
 *
 * ## Observing the client
 * `requests` records every request (`method`, `path`, lower-cased `headers`, parsed JSON `body`).
 * `waitForClientClose(n)` resolves once `n` responses (default 1, counted since start) were closed
 * by the client before the server finished them — e.g. after the gateway aborted a generation.
 * Closes caused by `close()` or by the `drop-connection` scenario are not counted.
 *
 * ## Images
 * `POST /images/generations` with `{ model, prompt, n, size: "WxH", response_format? }` answers
 * `{"created":…,"data":[{"url":"http://127.0.0.1:<port>/files/image-<k>.png","revised_prompt"?}|{"b64_json":"…"}]}`
 * with real PNGs of the requested size (one colour per image, see {@link fakeImageColour}); the
 * `url` form serves the PNG at `GET /files/image-<k>.png`. `setImageScenario` picks the reply
 * shape (`url` by default, or the request's `response_format`), `revised_prompt`, a raw reply,
 * or the error scenarios of chat; `servedImages(request)` gives the exact PNG bytes of a reply.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createPng, type RGB } from './test-images.js';

/** The names of the built-in behaviours; also accepted as model names. */
export type FakeScenarioType =
  | 'stream'
  | 'length'
  | 'in-band-error'
  | 'malformed-json'
  | 'drop-connection'
  | 'truncated'
  | 'stall'
  | 'hang'
  | 'endless'
  | 'rate-limited'
  | 'server-error'
  | 'unauthorized'
  | 'not-found'
  | 'http-error'
  | 'tool-calls'
  | 'reasoning'
  | 'echo';

/** A tool call the fake makes: its id, the tool's name and the arguments as JSON text. */
export interface FakeToolCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * The content of one streamed turn (the scenarios `stream`, `length`, `tool-calls`, `reasoning`,
 * `echo`, `chunks`): `gapMs` between writes (default 0), `singleWrite` sends the whole stream in one
 * `write` (to observe coalescing), `finishReason` replaces the default, `omitDone`/`omitFinish`/
 * `omitUsage` leave those parts out.
 */
interface FakeTurnOptions {
  gapMs?: number;
  finishReason?: string;
  singleWrite?: boolean;
  omitDone?: boolean;
  omitFinish?: boolean;
  omitUsage?: boolean;
}

/**
 * What the fake does with one chat request. Durations in ms.
 * - `stream`: role chunk, one chunk per token, a final chunk with `finishReason` (default `stop`),
 *   a usage chunk when the request asked for it, `[DONE]`. `tokens` (default
 *   {@link fakeTokens}`(tokenCount)`), `gapMs` between writes (default 0), `singleWrite` sends
 *   the whole stream in one `write` (to observe coalescing), `omitDone`/`omitFinish`/`omitUsage`
 *   leave those parts out.
 * - `length`: a `stream` whose finish reason is `length`.
 * - `in-band-error`: `tokensBefore` tokens, then `data: {"error":{"message"}}` and `[DONE]`.
 * - `malformed-json`: `tokensBefore` tokens, then a `data:` line with broken JSON, then `[DONE]`.
 * - `drop-connection`: `tokensBefore` tokens, then `response.socket.destroy()`.
 * - `truncated`: `tokensBefore` tokens, then a clean end of the body with no finish reason and no `[DONE]`.
 * - `stall`: `tokensBefore` tokens, then silence; never ends (until the client leaves or `close()`).
 * - `hang`: never sends response headers (for connect timeouts).
 * - `endless`: a token every `gapMs` (default 10) until the client disconnects (or `maxTokens`,
 *   then it finishes normally).
 * - `rate-limited`: HTTP 429, `Retry-After: retryAfter` (default `1`, seconds or an HTTP date), OpenAI error body.
 * - `server-error`: HTTP `status` (default 500) with an OpenAI error body.
 * - `unauthorized`: HTTP 401 whose message echoes the received key in full (a worst case for redaction).
 * - `not-found`: HTTP 404 "The model `…` does not exist".
 * - `http-error`: any `status` (default 400) with `message`, `errorType`, `code` and extra `headers`,
 *   or a non-JSON `rawBody`.
 * - `tool-calls`: role chunk, `reasoning` pieces and `tokens` (text) when given, then the `calls`
 *   (default {@link fakeToolCalls}`(callCount ?? 2)`) one after another, each as a first piece with
 *   id and name and its arguments in pieces of `pieceSize` characters (default 5); finish reason
 *   `tool_calls`.
 * - `reasoning`: role chunk, `reasoning` pieces (default {@link fakeReasoning}`(reasoningCount ?? 4)`)
 *   in `delta[field]` (`reasoning_content` by default, or `reasoning`), then the `tokens` (default
 *   {@link fakeTokens}`(tokenCount ?? 4)`) with `delta[field]: null` beside the text, as DeepSeek sends them.
 * - `echo`: the JSON text of the received request body as the answer, in pieces of `pieceSize`
 *   characters (default 16).
 * - `chunks`: role chunk, then one chunk per entry of `deltas` (each a `delta` object as it is),
 *   then the finish chunk (`finishReason`, default `stop`).
 *
 * In every streamed turn, a first delta with `tool_calls` and no `content` goes into the role
 * chunk (`{"role":"assistant","content":null,"tool_calls":[…]}`), as OpenAI sends it.
 *
 * `stream`, `length`, `tool-calls`, `reasoning`, `echo` and `chunks` take the options of {@link FakeTurnOptions}.
 */
export type FakeScenario =
  | ({ type: 'stream' | 'length'; tokens?: string[]; tokenCount?: number } & FakeTurnOptions)
  | ({ type: 'tool-calls'; calls?: FakeToolCall[]; callCount?: number; pieceSize?: number; tokens?: string[]; reasoning?: string[] } & FakeTurnOptions)
  | ({
      type: 'reasoning';
      reasoning?: string[];
      reasoningCount?: number;
      field?: 'reasoning_content' | 'reasoning';
      tokens?: string[];
      tokenCount?: number;
    } & FakeTurnOptions)
  | ({ type: 'echo'; pieceSize?: number } & FakeTurnOptions)
  | ({ type: 'chunks'; deltas: Array<Record<string, unknown>> } & FakeTurnOptions)
  | { type: 'in-band-error'; tokensBefore?: number; message?: string; gapMs?: number }
  | { type: 'malformed-json'; tokensBefore?: number; gapMs?: number }
  | { type: 'drop-connection'; tokensBefore?: number; gapMs?: number }
  | { type: 'truncated'; tokensBefore?: number; gapMs?: number }
  | { type: 'stall'; tokensBefore?: number; gapMs?: number }
  | { type: 'hang' }
  | { type: 'endless'; gapMs?: number; maxTokens?: number }
  | { type: 'rate-limited'; retryAfter?: number | string; retryAfterSeconds?: number; message?: string }
  | { type: 'server-error'; status?: number; message?: string }
  | { type: 'unauthorized'; message?: string }
  | { type: 'not-found'; message?: string }
  | {
      type: 'http-error';
      status?: number;
      message?: string;
      errorType?: string;
      code?: string | null;
      headers?: Record<string, string>;
      /** A raw body sent as `text/plain` instead of the OpenAI error JSON (e.g. a proxy's HTML or text page). */
      rawBody?: string;
    };

/**
 * What the fake does with one `POST /images/generations` request.
 * - `images`: 200 with `n` (or `count`) PNGs; `format` `url` (default, or the request's
 *   `response_format`), `b64_json`, or `mixed` (even indexes `url`, odd ones `b64_json`);
 *   `revisedPrompt` adds `revised_prompt` to every image; `renderSize` overrides the PNG size (pixels).
 * - `raw`: `status` (default 200) with `body` as it is (`contentType` default `application/json`),
 *   e.g. malformed JSON or `{"data":[]}`.
 * - `hang`, `rate-limited`, `server-error`, `unauthorized`, `not-found`, `http-error`: as for chat.
 */
export type FakeImageScenario =
  | {
      type: 'images';
      format?: 'url' | 'b64_json' | 'mixed';
      revisedPrompt?: string;
      count?: number;
      renderSize?: { width: number; height: number };
    }
  | { type: 'raw'; status?: number; body: string; contentType?: string }
  | Extract<FakeScenario, { type: 'hang' | 'rate-limited' | 'server-error' | 'unauthorized' | 'not-found' | 'http-error' }>;

/** The colour of the `index`-th image of an images reply. */
export function fakeImageColour(index: number): RGB {
  return [(index * 80 + 30) % 256, (index * 50 + 120) % 256, (index * 110 + 200) % 256];
}

/** One request the fake received. `headers` names are lower case; `body` is parsed JSON when it was JSON. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  /** Resolves when the response is over: `'finished'`, `'client-closed'` (client left early) or `'server-closed'`. */
  ended: Promise<'finished' | 'client-closed' | 'server-closed'>;
}

/** Options of {@link startFakeOpenAIUpstream}. */
export interface FakeOpenAIUpstreamOptions {
  /** Scenario for requests nothing else chose. Default: `{ type: 'stream' }`. */
  defaultScenario?: FakeScenario;
  /** Scenario per model name. */
  scenarios?: Record<string, FakeScenario>;
  /** Tokens in a default stream. Default 8. */
  tokenCount?: number;
  /** When set, every request must send `Authorization: Bearer <apiKey>` or gets 401. */
  apiKey?: string;
  /** Model ids `GET /models` lists. Default `['fake-model']`. */
  models?: string[];
}

/** What `GET /models` answers: a list of ids, an error status, or `'hang'` (never answers). */
export type FakeModelsEndpoint = string[] | { status: number; message?: string } | 'hang';

/** A running fake upstream. */
export interface FakeOpenAIUpstream {
  /** `http://127.0.0.1:<port>/v1`. */
  baseURL: string;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Chat requests only (`POST …/chat/completions`). */
  chatRequests(): RecordedRequest[];
  /** How many responses the client closed before the server finished them. */
  closedRequests(): number;
  /** Resolves once `count` (default 1) client closes happened since start (immediately if they already did). */
  waitForClientClose(count?: number): Promise<void>;
  /** Resolves once `count` (default 1) chat requests arrived since start. */
  waitForChatRequest(count?: number): Promise<RecordedRequest>;
  /** Forces a scenario (or a function of the request) for following chat requests; `undefined` restores the defaults. */
  setScenario(scenario: FakeScenario | ((request: RecordedRequest) => FakeScenario) | undefined): void;
  /** Changes what `GET /models` answers. */
  setModels(models: FakeModelsEndpoint): void;
  /** Image requests only (`POST …/images/generations`). */
  imageRequests(): RecordedRequest[];
  /** Resolves once `count` (default 1) image requests arrived since start. */
  waitForImageRequest(count?: number): Promise<RecordedRequest>;
  /** Forces a scenario (or a function of the request) for following image requests; `undefined` restores `{ type: 'images' }`. */
  setImageScenario(scenario: FakeImageScenario | ((request: RecordedRequest) => FakeImageScenario) | undefined): void;
  /** The exact PNG bytes of each image of the reply to an image request, in reply order (empty when it got no images). */
  servedImages(request: RecordedRequest): Buffer[];
  /** Ends every open connection (stalled and endless streams included) and stops listening. */
  close(): Promise<void>;
}

const WORDS = ['Once', ' upon', ' a', ' time', ',', ' a', ' tiny', ' fox', ' found', ' a', ' shiny', ' stone', '.'];

/** `count` deterministic tokens (`Once`, ` upon`, ` a`, …, repeating); a stream's text is their join. */
export function fakeTokens(count: number): string[] {
  return Array.from({ length: count }, (_, index) => WORDS[index % WORDS.length]!);
}

const REASONING_WORDS = ['The', ' user', ' wants', ' a', ' story', ';', ' keep', ' it', ' short', '.'];

/** `count` deterministic pieces of reasoning (`The`, ` user`, ` wants`, …, repeating). */
export function fakeReasoning(count: number): string[] {
  return Array.from({ length: count }, (_, index) => REASONING_WORDS[index % REASONING_WORDS.length]!);
}

const CITIES = ['Paris', 'Tokyo', 'Lima', 'Oslo'];

/** `count` deterministic calls of `get_weather`: ids `call_fake_0`, `call_fake_1`, …, arguments `{"city":"Paris","unit":"celsius"}`, then Tokyo, Lima, Oslo, … */
export function fakeToolCalls(count: number): FakeToolCall[] {
  return Array.from({ length: count }, (_, index) => ({
    id: `call_fake_${index}`,
    name: 'get_weather',
    arguments: JSON.stringify({ city: CITIES[index % CITIES.length], unit: 'celsius' }),
  }));
}

/** `text` cut into pieces of `size` characters. */
function piecesOf(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let start = 0; start < text.length; start += size) pieces.push(text.slice(start, start + size));
  return pieces;
}

/** What one streamed turn sends: the deltas after the role chunk, and the message of its non-streamed form. */
interface FakeTurn {
  deltas: Array<Record<string, unknown>>;
  finishReason: string;
  message: Record<string, unknown>;
}

/** The turn a stream-like scenario sends for a request `body`; undefined for the other scenarios. */
function turnOf(scenario: FakeScenario, body: unknown, defaultTokenCount: number): FakeTurn | undefined {
  switch (scenario.type) {
    case 'stream':
    case 'length': {
      const tokens = scenario.tokens ?? fakeTokens(scenario.tokenCount ?? defaultTokenCount);
      return {
        deltas: tokens.map((content) => ({ content })),
        finishReason: scenario.finishReason ?? (scenario.type === 'length' ? 'length' : 'stop'),
        message: { role: 'assistant', content: tokens.join('') },
      };
    }
    case 'reasoning': {
      const field = scenario.field ?? 'reasoning_content';
      const reasoning = scenario.reasoning ?? fakeReasoning(scenario.reasoningCount ?? 4);
      const tokens = scenario.tokens ?? fakeTokens(scenario.tokenCount ?? 4);
      return {
        deltas: [
          ...reasoning.map((piece) => (field === 'reasoning' ? { content: '', reasoning: piece } : { content: null, reasoning_content: piece })),
          ...tokens.map((content) => ({ content, [field]: null })),
        ],
        finishReason: scenario.finishReason ?? 'stop',
        message: { role: 'assistant', content: tokens.join(''), [field]: reasoning.join('') },
      };
    }
    case 'tool-calls': {
      const calls = scenario.calls ?? fakeToolCalls(scenario.callCount ?? 2);
      const reasoning = scenario.reasoning ?? [];
      const tokens = scenario.tokens ?? [];
      const pieceSize = scenario.pieceSize ?? 5;
      const callDeltas = calls.flatMap((call, index) => [
        { tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] },
        ...piecesOf(call.arguments, pieceSize).map((piece) => ({ tool_calls: [{ index, function: { arguments: piece } }] })),
      ]);
      return {
        deltas: [...reasoning.map((piece) => ({ content: null, reasoning_content: piece })), ...tokens.map((content) => ({ content })), ...callDeltas],
        finishReason: scenario.finishReason ?? 'tool_calls',
        message: {
          role: 'assistant',
          content: tokens.length > 0 ? tokens.join('') : null,
          ...(reasoning.length > 0 && { reasoning_content: reasoning.join('') }),
          tool_calls: calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
          refusal: null,
        },
      };
    }
    case 'echo': {
      const text = JSON.stringify(body);
      return {
        deltas: piecesOf(text, scenario.pieceSize ?? 16).map((content) => ({ content })),
        finishReason: scenario.finishReason ?? 'stop',
        message: { role: 'assistant', content: text },
      };
    }
    case 'chunks':
      return {
        deltas: scenario.deltas,
        finishReason: scenario.finishReason ?? 'stop',
        message: { role: 'assistant', content: scenario.deltas.map((delta) => (typeof delta.content === 'string' ? delta.content : '')).join('') },
      };
    default:
      return undefined;
  }
}

/** A base URL on 127.0.0.1 where nothing listens (a port that was just free), for "upstream down" tests. */
export async function unusedBaseURL(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

const SCENARIO_TYPES = new Set<FakeScenarioType>([
  'stream',
  'length',
  'in-band-error',
  'malformed-json',
  'drop-connection',
  'truncated',
  'stall',
  'hang',
  'endless',
  'rate-limited',
  'server-error',
  'unauthorized',
  'not-found',
  'http-error',
  'tool-calls',
  'reasoning',
  'echo',
]);

/** `rate-limited?retryAfterSeconds=3` → `{ type: 'rate-limited', retryAfterSeconds: 3 }`; undefined if not a scenario name. */
function scenarioFromModelName(model: string): FakeScenario | undefined {
  const [name = '', query = ''] = model.split('?', 2);
  if (!SCENARIO_TYPES.has(name as FakeScenarioType)) return undefined;
  const scenario: Record<string, unknown> = { type: name };
  for (const [key, value] of new URLSearchParams(query)) {
    if (key === 'tokens') scenario.tokenCount = Number(value);
    else if (key === 'calls') scenario.callCount = Number(value);
    else if (key === 'reasoningTokens') scenario.reasoningCount = Number(value);
    else scenario[key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return scenario as FakeScenario;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Starts a fake OpenAI-compatible upstream on 127.0.0.1, port 0. See the module comment for
 * the wire format, how scenarios are chosen and how to observe client disconnects.
 * Always `await upstream.close()` (e.g. in `afterEach`): stalled streams never end on their own.
 */
export async function startFakeOpenAIUpstream(options: FakeOpenAIUpstreamOptions = {}): Promise<FakeOpenAIUpstream> {
  const requests: RecordedRequest[] = [];
  let forcedScenario: FakeScenario | ((request: RecordedRequest) => FakeScenario) | undefined;
  let modelsEndpoint: FakeModelsEndpoint = options.models ?? ['fake-model'];
  let closing = false;
  let clientCloses = 0;
  let chatRequestCount = 0;
  let completionCounter = 0;
  const closeWaiters: Array<{ count: number; resolve: () => void }> = [];
  const chatWaiters: Array<{ count: number; resolve: (request: RecordedRequest) => void }> = [];
  const chatRequestList: RecordedRequest[] = [];
  const imageRequestList: RecordedRequest[] = [];
  const imageWaiters: Array<{ count: number; resolve: (request: RecordedRequest) => void }> = [];
  let forcedImageScenario: FakeImageScenario | ((request: RecordedRequest) => FakeImageScenario) | undefined;
  const imageFiles = new Map<string, Buffer>();
  const servedImageBytes = new WeakMap<RecordedRequest, Buffer[]>();
  let imageCounter = 0;
  let origin = '';

  const chooseScenario = (recorded: RecordedRequest, model: string): FakeScenario => {
    if (forcedScenario) return typeof forcedScenario === 'function' ? forcedScenario(recorded) : forcedScenario;
    return options.scenarios?.[model] ?? scenarioFromModelName(model) ?? options.defaultScenario ?? { type: 'stream' };
  };

  const sendJson = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    response.end(text);
  };

  const sendError = (
    response: ServerResponse,
    status: number,
    message: string,
    errorType: string,
    code: string | null,
    headers: Record<string, string> = {},
  ) => sendJson(response, status, { error: { message, type: errorType, param: null, code } }, headers);

  const handleChat = async (request: IncomingMessage, response: ServerResponse, recorded: RecordedRequest) => {
    const body = (recorded.body ?? {}) as {
      model?: string;
      stream?: boolean;
      stream_options?: { include_usage?: boolean };
      messages?: Array<{ content?: string }>;
    };
    const model = typeof body.model === 'string' ? body.model : '';
    const scenario = chooseScenario(recorded, model);
    const id = `chatcmpl-fake-${++completionCounter}`;
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = body.stream_options?.include_usage === true;
    const promptTokens = (body.messages ?? []).reduce(
      (sum, message) => sum + (typeof message.content === 'string' ? message.content.split(/\s+/).filter(Boolean).length : 0),
      0,
    );

    switch (scenario.type) {
      case 'hang':
        return; // no headers, ever: the connection stays open until the client leaves or close()
      case 'rate-limited': {
        const retryAfter = String(scenario.retryAfter ?? scenario.retryAfterSeconds ?? 1);
        sendError(
          response,
          429,
          scenario.message ?? `Rate limit reached for model \`${model}\`. Please try again in ${retryAfter}s.`,
          'requests',
          'rate_limit_exceeded',
          { 'Retry-After': retryAfter },
        );
        return;
      }
      case 'server-error':
        sendError(
          response,
          scenario.status ?? 500,
          scenario.message ?? 'The server had an error while processing your request. Sorry about that!',
          'server_error',
          null,
        );
        return;
      case 'unauthorized': {
        const authorization = request.headers.authorization ?? '';
        const key = authorization.replace(/^Bearer\s+/i, '');
        sendError(
          response,
          401,
          scenario.message ?? `Incorrect API key provided: ${key}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          'invalid_request_error',
          'invalid_api_key',
        );
        return;
      }
      case 'not-found':
        sendError(
          response,
          404,
          scenario.message ?? `The model \`${model}\` does not exist or you do not have access to it.`,
          'invalid_request_error',
          'model_not_found',
        );
        return;
      case 'http-error':
        if (scenario.rawBody !== undefined) {
          response.writeHead(scenario.status ?? 400, { 'Content-Type': 'text/plain; charset=utf-8', ...scenario.headers });
          response.end(scenario.rawBody);
          return;
        }
        sendError(
          response,
          scenario.status ?? 400,
          scenario.message ?? 'Bad request',
          scenario.errorType ?? 'invalid_request_error',
          scenario.code ?? null,
          scenario.headers,
        );
        return;
      default:
        break;
    }

    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        system_fingerprint: 'fp_fake',
        choices,
        ...(includeUsage && { usage: null }),
        ...extra,
      })}\n\n`;
    const deltaChunk = (delta: Record<string, unknown>) => chunk([{ index: 0, delta, logprobs: null, finish_reason: null }]);
    const roleChunk = () => deltaChunk({ role: 'assistant', content: '', refusal: null });
    const tokenChunk = (token: string) => deltaChunk({ content: token });
    const finishChunk = (reason: string) => chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: reason }]);
    const usageChunk = (completionTokens: number) =>
      chunk([], {
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      });
    const DONE = 'data: [DONE]\n\n';

    const turn = turnOf(scenario, recorded.body, options.tokenCount ?? 8);
    // Non-streaming requests get a plain chat.completion (only for the stream-like scenarios).
    if (body.stream !== true && turn) {
      const completionTokens = turn.deltas.length;
      sendJson(response, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: turn.message, finish_reason: turn.finishReason }],
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      });
      return;
    }

    response.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
    response.flushHeaders();
    const open = () => !response.destroyed && !response.writableEnded;
    /** Writes one piece if the connection is still open; false once it is gone. */
    const write = (text: string): boolean => {
      if (!open()) return false;
      response.write(text);
      return true;
    };
    /** Writes the role chunk and `count` tokens, `gapMs` apart; false if the client left. */
    const writeTokens = async (tokens: string[], gapMs: number): Promise<boolean> => {
      if (!write(roleChunk())) return false;
      for (const token of tokens) {
        if (gapMs > 0) await delay(gapMs);
        if (!write(tokenChunk(token))) return false;
      }
      return true;
    };

    if (turn) {
      const settings = scenario as FakeTurnOptions;
      const deltas = [...turn.deltas];
      // OpenAI sends the first tool call piece in the role chunk when the turn has no text before it.
      const first = deltas[0];
      const opening =
        first && first.tool_calls !== undefined && first.content === undefined
          ? deltaChunk({ role: 'assistant', content: null, tool_calls: deltas.shift()!.tool_calls, refusal: null })
          : roleChunk();
      const tail = [
        ...(settings.omitFinish ? [] : [finishChunk(turn.finishReason)]),
        ...(includeUsage && !settings.omitUsage ? [usageChunk(turn.deltas.length)] : []),
        ...(settings.omitDone ? [] : [DONE]),
      ];
      if (settings.singleWrite) {
        write([opening, ...deltas.map(deltaChunk), ...tail].join(''));
        if (open()) response.end();
        return;
      }
      if (!write(opening)) return;
      for (const delta of deltas) {
        if ((settings.gapMs ?? 0) > 0) await delay(settings.gapMs!);
        if (!write(deltaChunk(delta))) return;
      }
      for (const piece of tail) if (!write(piece)) return;
      if (open()) response.end();
      return;
    }

    switch (scenario.type) {
      case 'in-band-error': {
        if (!(await writeTokens(fakeTokens(scenario.tokensBefore ?? 2), scenario.gapMs ?? 0))) return;
        write(`data: ${JSON.stringify({ error: { message: scenario.message ?? 'The model crashed mid-stream', type: 'server_error' } })}\n\n`);
        write(DONE);
        if (open()) response.end();
        return;
      }
      case 'malformed-json': {
        if (!(await writeTokens(fakeTokens(scenario.tokensBefore ?? 2), scenario.gapMs ?? 0))) return;
        write(`data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"oops"\n\n`);
        write(DONE);
        if (open()) response.end();
        return;
      }
      case 'drop-connection': {
        if (!(await writeTokens(fakeTokens(scenario.tokensBefore ?? 2), scenario.gapMs ?? 0))) return;
        serverDestroyed.add(response);
        // Let the written chunks leave first, then cut the TCP connection without a chunked terminator.
        const socket = response.socket;
        if (socket && socket.writableLength > 0) await once(socket, 'drain');
        socket?.destroy();
        return;
      }
      case 'truncated': {
        if (!(await writeTokens(fakeTokens(scenario.tokensBefore ?? 2), scenario.gapMs ?? 0))) return;
        if (open()) response.end();
        return;
      }
      case 'stall': {
        await writeTokens(fakeTokens(scenario.tokensBefore ?? 2), scenario.gapMs ?? 0);
        return; // never ends: the client's idle timeout, the client leaving or close() ends it
      }
      case 'endless': {
        const gapMs = scenario.gapMs ?? 10;
        if (!write(roleChunk())) return;
        for (let index = 0; scenario.maxTokens === undefined || index < scenario.maxTokens; index++) {
          await delay(gapMs);
          if (!write(tokenChunk(WORDS[index % WORDS.length]!))) return;
        }
        write(finishChunk('stop'));
        if (includeUsage) write(usageChunk(scenario.maxTokens ?? 0));
        write(DONE);
        if (open()) response.end();
        return;
      }
    }
  };

  const serverDestroyed = new WeakSet<ServerResponse>();

  const handleImages = (request: IncomingMessage, response: ServerResponse, recorded: RecordedRequest) => {
    const body = (recorded.body ?? {}) as { model?: unknown; n?: unknown; size?: unknown; response_format?: unknown };
    const model = typeof body.model === 'string' ? body.model : '';
    const scenario: FakeImageScenario = forcedImageScenario
      ? typeof forcedImageScenario === 'function'
        ? forcedImageScenario(recorded)
        : forcedImageScenario
      : { type: 'images' };
    switch (scenario.type) {
      case 'hang':
        return;
      case 'raw': {
        const text = scenario.body;
        response.writeHead(scenario.status ?? 200, {
          'Content-Type': scenario.contentType ?? 'application/json',
          'Content-Length': Buffer.byteLength(text),
        });
        response.end(text);
        return;
      }
      case 'rate-limited': {
        const retryAfter = String(scenario.retryAfter ?? scenario.retryAfterSeconds ?? 1);
        sendError(response, 429, scenario.message ?? `Rate limit reached for images. Please try again in ${retryAfter}s.`, 'requests', 'rate_limit_exceeded', {
          'Retry-After': retryAfter,
        });
        return;
      }
      case 'server-error':
        sendError(response, scenario.status ?? 500, scenario.message ?? 'The server had an error while processing your request.', 'server_error', null);
        return;
      case 'unauthorized': {
        const key = (request.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
        sendError(response, 401, scenario.message ?? `Incorrect API key provided: ${key}.`, 'invalid_request_error', 'invalid_api_key');
        return;
      }
      case 'not-found':
        sendError(response, 404, scenario.message ?? `The model \`${model}\` does not exist.`, 'invalid_request_error', 'model_not_found');
        return;
      case 'http-error':
        if (scenario.rawBody !== undefined) {
          response.writeHead(scenario.status ?? 400, { 'Content-Type': 'text/plain; charset=utf-8', ...scenario.headers });
          response.end(scenario.rawBody);
          return;
        }
        sendError(
          response,
          scenario.status ?? 400,
          scenario.message ?? 'Bad request',
          scenario.errorType ?? 'invalid_request_error',
          scenario.code ?? null,
          scenario.headers,
        );
        return;
      case 'images': {
        const count = scenario.count ?? (typeof body.n === 'number' && body.n > 0 ? body.n : 1);
        const size = typeof body.size === 'string' ? /^(\d+)x(\d+)$/.exec(body.size) : null;
        const width = scenario.renderSize?.width ?? (size ? Number(size[1]) : 1024);
        const height = scenario.renderSize?.height ?? (size ? Number(size[2]) : 1024);
        const requested = body.response_format === 'b64_json' ? 'b64_json' : 'url';
        const format = scenario.format ?? requested;
        const images: Buffer[] = [];
        const data = Array.from({ length: count }, (_, index) => {
          const bytes = createPng(width, height, fakeImageColour(index));
          images.push(bytes);
          const useURL = format === 'url' || (format === 'mixed' && index % 2 === 0);
          const revised = scenario.revisedPrompt !== undefined ? { revised_prompt: scenario.revisedPrompt } : {};
          if (!useURL) return { b64_json: bytes.toString('base64'), ...revised };
          const name = `image-${++imageCounter}`;
          imageFiles.set(name, bytes);
          return { url: `${origin}/files/${name}.png`, ...revised };
        });
        servedImageBytes.set(recorded, images);
        sendJson(response, 200, { created: Math.floor(Date.now() / 1000), data });
        return;
      }
    }
  };

  const handleModels = (response: ServerResponse) => {
    if (modelsEndpoint === 'hang') return; // no headers, ever
    if (Array.isArray(modelsEndpoint)) {
      const created = Math.floor(Date.now() / 1000);
      sendJson(response, 200, {
        object: 'list',
        data: modelsEndpoint.map((id) => ({ id, object: 'model', created, owned_by: 'fake-upstream' })),
      });
      return;
    }
    const { status, message } = modelsEndpoint;
    sendError(response, status, message ?? `models endpoint answered ${status}`, status >= 500 ? 'server_error' : 'invalid_request_error', null);
  };

  const server: Server = createServer((request, response) => {
    response.on('error', () => {});
    request.on('error', () => {});
    const pieces: Buffer[] = [];
    request.on('data', (piece: Buffer) => pieces.push(piece));
    request.on('end', () => {
      const raw = Buffer.concat(pieces).toString('utf8');
      let body: unknown = raw === '' ? undefined : raw;
      try {
        if (raw !== '') body = JSON.parse(raw) as unknown;
      } catch {
        // keep the raw text
      }
      const path = (request.url ?? '/').split('?')[0]!;
      let resolveEnded!: (how: 'finished' | 'client-closed' | 'server-closed') => void;
      const recorded: RecordedRequest = {
        method: request.method ?? 'GET',
        path,
        headers: { ...request.headers },
        body,
        ended: new Promise((resolve) => (resolveEnded = resolve)),
      };
      requests.push(recorded);
      response.on('close', () => {
        if (response.writableFinished) return resolveEnded('finished');
        if (closing || serverDestroyed.has(response)) return resolveEnded('server-closed');
        clientCloses += 1;
        resolveEnded('client-closed');
        for (const waiter of [...closeWaiters]) {
          if (clientCloses >= waiter.count) {
            closeWaiters.splice(closeWaiters.indexOf(waiter), 1);
            waiter.resolve();
          }
        }
      });

      const route = path.replace(/^\/v1(?=\/)/, '');
      if (options.apiKey !== undefined && request.headers.authorization !== `Bearer ${options.apiKey}`) {
        sendError(response, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
        return;
      }
      if (request.method === 'GET' && route === '/models') return handleModels(response);
      if (request.method === 'GET' && route.startsWith('/files/')) {
        const bytes = imageFiles.get(route.slice('/files/'.length).replace(/\.png$/, ''));
        if (!bytes) return sendError(response, 404, `No such file: ${route}`, 'invalid_request_error', null);
        response.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': bytes.byteLength });
        response.end(bytes);
        return;
      }
      if (request.method === 'POST' && route === '/images/generations') {
        imageRequestList.push(recorded);
        for (const waiter of [...imageWaiters]) {
          if (imageRequestList.length >= waiter.count) {
            imageWaiters.splice(imageWaiters.indexOf(waiter), 1);
            waiter.resolve(imageRequestList[waiter.count - 1]!);
          }
        }
        if (typeof body !== 'object' || body === null) {
          sendError(response, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
          return;
        }
        handleImages(request, response, recorded);
        return;
      }
      if (request.method === 'POST' && route === '/chat/completions') {
        chatRequestCount += 1;
        chatRequestList.push(recorded);
        for (const waiter of [...chatWaiters]) {
          if (chatRequestCount >= waiter.count) {
            chatWaiters.splice(chatWaiters.indexOf(waiter), 1);
            waiter.resolve(chatRequestList[waiter.count - 1]!);
          }
        }
        if (typeof body !== 'object' || body === null) {
          sendError(response, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
          return;
        }
        handleChat(request, response, recorded).catch(() => {
          if (!response.headersSent) sendError(response, 500, 'fake upstream failed', 'server_error', null);
          else response.destroy();
        });
        return;
      }
      sendError(response, 404, `Unknown request URL: ${request.method} ${path}.`, 'invalid_request_error', 'unknown_url');
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    chatRequests: () => [...chatRequestList],
    closedRequests: () => clientCloses,
    waitForClientClose(count = 1) {
      if (clientCloses >= count) return Promise.resolve();
      return new Promise<void>((resolve) => closeWaiters.push({ count, resolve }));
    },
    waitForChatRequest(count = 1) {
      if (chatRequestCount >= count) return Promise.resolve(chatRequestList[count - 1]!);
      return new Promise<RecordedRequest>((resolve) => chatWaiters.push({ count, resolve }));
    },
    setScenario(scenario) {
      forcedScenario = scenario;
    },
    setModels(models) {
      modelsEndpoint = models;
    },
    imageRequests: () => [...imageRequestList],
    waitForImageRequest(count = 1) {
      if (imageRequestList.length >= count) return Promise.resolve(imageRequestList[count - 1]!);
      return new Promise<RecordedRequest>((resolve) => imageWaiters.push({ count, resolve }));
    },
    setImageScenario(scenario) {
      forcedImageScenario = scenario;
    },
    servedImages: (request) => servedImageBytes.get(request) ?? [],
    async close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
