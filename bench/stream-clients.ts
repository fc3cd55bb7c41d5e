/**
 * The ways the benchmark reads one chat stream, each timed the same way from the call to the first
 * text (time to first token) and to the end of the stream (total):
 * - OpenAI's chat-completions stream (`POST …/chat/completions`, `stream: true`), `fetch` +
 *   `eventsource-parser` on the `chat.completion.chunk` format: directly from the upstream, through
 *   the Portkey gateway, and through this gateway's REST API ({@link streamChatCompletions});
 * - through the gateway's `chatCompletion` subscription over graphql-ws;
 * - through the same subscription over SSE (Yoga's distinct-connections mode), `fetch` + `eventsource-parser`.
 *
 * Every function resolves (never rejects) with a {@link StreamResult}; `error` is set when the
 * stream failed, timed out or broke the event invariants (contiguous sequences, started first,
 * exactly one terminal event last, completed text equal to the deltas).
 */
import { performance } from 'node:perf_hooks';
import { createParser } from 'eventsource-parser';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** What one stream gave. Times in ms from the call. */
export interface StreamResult {
  /** Set when the stream did not complete cleanly. */
  error?: string;
  /** Time to the first non-empty text. NaN when no text came. */
  firstTokenMs: number;
  /** Time to the end of the stream (terminal event, or `[DONE]`). */
  totalMs: number;
  /** All text received, in order. */
  text: string;
  /** Number of messages that carried text (chunks or `ChatTokenDelta` events). */
  textMessages: number;
  /** `usage.completionTokens` (`completion_tokens`) when reported. */
  completionTokens?: number;
  /** Finish reason as reported (`stop`, `STOP`, `LENGTH`, …). */
  finishReason?: string;
  /** With `recordArrivals`: when each text-carrying message arrived, ms from the call, in order. */
  textArrivalsMs?: number[];
}

/** How one stream is run. */
export interface StreamOptions {
  /** The stream fails (and is closed) when it has not ended within this many ms. */
  timeoutMs: number;
  /** Record {@link StreamResult.textArrivalsMs} (off in throughput phases, where it would cost allocations). */
  recordArrivals?: boolean;
  /** Closes the stream early; it then resolves with an error. */
  signal?: AbortSignal;
  /**
   * Called once when the stream is open end to end: the first chunk (the upstream's role chunk)
   * or the first event (`ChatCompletionStarted`) arrived.
   */
  onOpen?: () => void;
}

/** What every measured subscription selects of each event (the `EventChecker` reads these fields). */
const CHAT_EVENT_SELECTION = `{
    __typename
    ... on GenerationEvent { sequence }
    ... on ChatTokenDelta { text }
    ... on ChatCompletionCompleted { finishReason text usage { completionTokens } }
    ... on GenerationFailed { error { code message } }
    ... on GenerationCancelled { reason }
  }`;

/** The subscription every gateway measurement sends. */
export const BENCH_CHAT_SUBSCRIPTION = `subscription BenchChat($input: ChatCompletionInput!) {
  chatCompletion(input: $input) ${CHAT_EVENT_SELECTION}
}`;

/** The `ChatCompletionInput` of a gateway measurement. */
export interface ChatCompletionInput {
  provider?: string;
  model?: string;
  messages: Array<{ role: 'SYSTEM' | 'USER' | 'ASSISTANT'; content: string }>;
  maxTokens?: number;
  temperature?: number;
}

interface ChatEvent {
  __typename: string;
  sequence: number;
  text?: string;
  finishReason?: string;
  usage?: { completionTokens: number | null } | null;
  error?: { code: string; message: string };
  reason?: string | null;
}

interface GraphQLResult {
  data?: { chatCompletion?: ChatEvent } | null;
  errors?: Array<{ message: string }>;
}

const describe = (error: unknown): string => {
  if (error instanceof Error) return error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message;
  if (Array.isArray(error)) return error.map(describe).join('; ');
  if (typeof error === 'object' && error !== null && 'reason' in error) return `closed: ${String((error as { code?: unknown }).code)} ${String(error.reason)}`;
  return String(error);
};

/**
 * Accumulates gateway events and checks their invariants; shared by graphql-ws and SSE.
 * `onEvent` returns false once a terminal event arrived.
 */
class EventChecker {
  text = '';
  textMessages = 0;
  firstTokenAt = Number.NaN;
  error: string | undefined;
  completionTokens: number | undefined;
  finishReason: string | undefined;
  terminal = false;
  readonly textArrivals: number[] | undefined;
  private expectedSequence = 1;
  private opened = false;

  constructor(private readonly options: StreamOptions) {
    this.textArrivals = options.recordArrivals ? [] : undefined;
  }

  onResult(result: GraphQLResult, now: number): void {
    if (!this.opened) {
      this.opened = true;
      this.options.onOpen?.();
    }
    if (result.errors && result.errors.length > 0) {
      this.error ??= `GraphQL error: ${result.errors.map((error) => error.message).join('; ')}`;
      return;
    }
    const event = result.data?.chatCompletion;
    if (!event) {
      this.error ??= 'result without data';
      return;
    }
    if (this.terminal) this.error ??= `event ${event.__typename} after the terminal event`;
    if (event.sequence !== this.expectedSequence) this.error ??= `sequence ${event.sequence}, expected ${this.expectedSequence}`;
    this.expectedSequence = event.sequence + 1;
    if (event.sequence === 1 && event.__typename !== 'ChatCompletionStarted') this.error ??= `first event is ${event.__typename}`;
    switch (event.__typename) {
      case 'ChatTokenDelta':
        if (event.text) {
          if (Number.isNaN(this.firstTokenAt)) this.firstTokenAt = now;
          this.text += event.text;
          this.textMessages += 1;
          this.textArrivals?.push(now);
        }
        break;
      case 'ChatCompletionCompleted':
        this.terminal = true;
        this.finishReason = event.finishReason;
        this.completionTokens = event.usage?.completionTokens ?? undefined;
        if (event.text !== this.text) this.error ??= 'completed text differs from the concatenated deltas';
        break;
      case 'GenerationFailed':
        this.terminal = true;
        this.error ??= `GenerationFailed ${event.error?.code}: ${event.error?.message}`;
        break;
      case 'GenerationCancelled':
        this.terminal = true;
        this.error ??= `GenerationCancelled: ${event.reason}`;
        break;
      default:
        break;
    }
  }

  result(startedAt: number, endedAt: number, extraError?: string): StreamResult {
    const error = this.error ?? extraError ?? (this.terminal ? undefined : 'stream ended without a terminal event');
    return {
      ...(error !== undefined && { error }),
      firstTokenMs: this.firstTokenAt - startedAt,
      totalMs: endedAt - startedAt,
      text: this.text,
      textMessages: this.textMessages,
      ...(this.completionTokens !== undefined && { completionTokens: this.completionTokens }),
      ...(this.finishReason !== undefined && { finishReason: this.finishReason }),
      ...(this.textArrivals !== undefined && { textArrivalsMs: this.textArrivals.map((at) => at - startedAt) }),
    };
  }
}

/** Reads a `fetch` body through `eventsource-parser` until `isFinished()` or the end of the body. */
async function readEventStream(
  response: Response,
  onEvent: (event: { event?: string | undefined; data: string }) => void,
  isFinished: () => boolean,
): Promise<void> {
  if (!response.body) throw new Error('response without body');
  const parser = createParser({ onEvent });
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  try {
    while (!isFinished()) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** The signal of one request: the caller's (if any) or the timeout, whichever fires first. */
function requestSignal(options: StreamOptions): AbortSignal {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  return options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
}

/** The body of a chat-completions request (OpenAI's format; `stream` and `stream_options` are added). */
export interface ChatCompletionsBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  /** This gateway's REST API: the provider to use. */
  provider?: string;
}

/**
 * Streams one chat completion from an OpenAI-compatible `POST {baseURL}/chat/completions` with
 * the body the gateway's provider sends (`stream: true`, `stream_options.include_usage`): straight
 * from the upstream (the baseline), through Portkey (with its `x-portkey-*` headers), or through
 * this gateway's REST API. The stream must end with a `finish_reason` and `data: [DONE]`.
 * @param headers added to `content-type` and `accept`.
 */
export async function streamChatCompletions(
  baseURL: string,
  body: ChatCompletionsBody,
  headers: Record<string, string>,
  options: StreamOptions,
): Promise<StreamResult> {
  const startedAt = performance.now();
  let text = '';
  let textMessages = 0;
  let firstTokenAt = Number.NaN;
  let done = false;
  let opened = false;
  let finishReason: string | undefined;
  let completionTokens: number | undefined;
  let error: string | undefined;
  const arrivals: number[] | undefined = options.recordArrivals ? [] : undefined;
  try {
    const response = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
      signal: requestSignal(options),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
    await readEventStream(
      response,
      (event) => {
        if (!opened) {
          opened = true;
          options.onOpen?.();
        }
        if (event.data === '[DONE]') {
          done = true;
          return;
        }
        const chunk = JSON.parse(event.data) as {
          error?: { message?: string };
          choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
          usage?: { completion_tokens?: number } | null;
        };
        if (chunk.error) error ??= `in-band error: ${chunk.error.message}`;
        const choice = chunk.choices?.[0];
        const content = choice?.delta?.content;
        if (content) {
          const now = performance.now();
          if (Number.isNaN(firstTokenAt)) firstTokenAt = now;
          text += content;
          textMessages += 1;
          arrivals?.push(now - startedAt);
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage?.completion_tokens !== undefined) completionTokens = chunk.usage.completion_tokens;
      },
      () => done,
    );
    if (!done) error ??= 'stream ended without [DONE]';
    if (finishReason === undefined) error ??= 'no finish_reason';
  } catch (caught) {
    error ??= describe(caught);
  }
  const endedAt = performance.now();
  return {
    ...(error !== undefined && { error }),
    firstTokenMs: firstTokenAt - startedAt,
    totalMs: endedAt - startedAt,
    text,
    textMessages,
    ...(completionTokens !== undefined && { completionTokens }),
    ...(finishReason !== undefined && { finishReason }),
    ...(arrivals !== undefined && { textArrivalsMs: arrivals }),
  };
}

/**
 * Opens a graphql-ws client on a real WebSocket and waits until the connection is acknowledged,
 * so that connection setup is never part of a measurement. Non-lazy: the socket stays open between
 * subscriptions (a lazy client would close it after each one). No retries.
 * @throws Error when the connection fails or is not acknowledged within `timeoutMs`.
 */
export async function connectWebSocketClient(url: string, timeoutMs: number): Promise<Client> {
  let resolveConnected!: () => void;
  let rejectConnected!: (error: Error) => void;
  const connected = new Promise<void>((resolve, reject) => {
    resolveConnected = resolve;
    rejectConnected = reject;
  });
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: (error) => rejectConnected(new Error(`graphql-ws connection failed: ${describe(error)}`)),
    on: { connected: () => resolveConnected() },
  });
  const timer = setTimeout(() => rejectConnected(new Error(`graphql-ws: not connected within ${timeoutMs} ms`)), timeoutMs);
  try {
    await connected;
  } catch (error) {
    await client.dispose();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** Streams one `chatCompletion` subscription over an open graphql-ws client (checks: see `subscribeChecked`). */
export function streamWebSocket(client: Client, input: ChatCompletionInput, options: StreamOptions): Promise<StreamResult> {
  return subscribeChecked(client, { query: BENCH_CHAT_SUBSCRIPTION, variables: { input } }, options);
}

/** Streams one `chatCompletion` subscription over SSE: `POST /graphql` with `accept: text/event-stream`. */
export async function streamServerSentEvents(graphqlURL: string, input: ChatCompletionInput, options: StreamOptions): Promise<StreamResult> {
  const checker = new EventChecker(options);
  const startedAt = performance.now();
  let completed = false;
  let extraError: string | undefined;
  try {
    const response = await fetch(graphqlURL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: BENCH_CHAT_SUBSCRIPTION, variables: { input } }),
      signal: requestSignal(options),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
    if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
      throw new Error(`expected text/event-stream, got ${response.headers.get('content-type')}`);
    }
    await readEventStream(
      response,
      (event) => {
        if (event.event === 'complete') {
          completed = true;
          return;
        }
        if (event.event === 'next' || event.event === undefined) checker.onResult(JSON.parse(event.data) as GraphQLResult, performance.now());
      },
      () => completed,
    );
    if (!completed) extraError = 'SSE stream ended without a complete event';
  } catch (error) {
    extraError = describe(error);
  }
  return checker.result(startedAt, performance.now(), extraError);
}

/**
 * The subscription a follower sends: `chatCompletionEvents` of an existing generation from its
 * first event (no `after`: the log is replayed from sequence 1, then live events follow). The
 * field is aliased to `chatCompletion`, so the result has the shape of
 * {@link BENCH_CHAT_SUBSCRIPTION}'s and the same checks apply to it.
 */
export const BENCH_FOLLOW_SUBSCRIPTION = `subscription BenchFollow($generationId: ID!) {
  chatCompletion: chatCompletionEvents(generationId: $generationId) ${CHAT_EVENT_SELECTION}
}`;

/** The mutation that starts a generation without following it (docs/graphql-api.md). */
export const BENCH_START_MUTATION = `mutation BenchStart($input: ChatCompletionInput!) {
  startChatCompletion(input: $input) { id status }
}`;

/**
 * Starts a chat generation with the `startChatCompletion` mutation over plain HTTP
 * (`POST {graphqlURL}`, JSON, `fetch`) and returns its id; the generation runs on with nobody
 * following it.
 * @param graphqlURL the gateway's `http://…/graphql`.
 * @throws Error on an HTTP error, a GraphQL error (with its `extensions.code`), a status other
 *   than `RUNNING`, or no answer within `timeoutMs`.
 */
export async function startChatCompletion(graphqlURL: string, input: ChatCompletionInput, timeoutMs: number): Promise<string> {
  const response = await fetch(graphqlURL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query: BENCH_START_MUTATION, variables: { input } }),
    signal: AbortSignal.timeout(Math.ceil(timeoutMs)), // which takes whole ms only
  });
  const body = (await response.json().catch(() => undefined)) as
    | { data?: { startChatCompletion?: { id: string; status: string } | null } | null; errors?: Array<{ message: string; extensions?: { code?: string } }> }
    | undefined;
  if (body?.errors && body.errors.length > 0) {
    throw new Error(`startChatCompletion: ${body.errors.map((error) => `${error.extensions?.code ?? 'error'}: ${error.message}`).join('; ')}`);
  }
  const generation = body?.data?.startChatCompletion;
  if (!response.ok || !generation) throw new Error(`startChatCompletion: HTTP ${response.status} without a generation`);
  if (generation.status !== 'RUNNING') throw new Error(`startChatCompletion: generation ${generation.id} is ${generation.status}, expected RUNNING`);
  return generation.id;
}

/**
 * Runs one subscription `request` on an open graphql-ws client and checks its events with an
 * `EventChecker` (the result's field must be named `chatCompletion`); resolves, never rejects,
 * when it completes, fails, times out (`options.timeoutMs`) or `options.signal` aborts.
 */
function subscribeChecked(client: Client, request: { query: string; variables: Record<string, unknown> }, options: StreamOptions): Promise<StreamResult> {
  return new Promise((resolve) => {
    const checker = new EventChecker(options);
    const startedAt = performance.now();
    let settled = false;
    const finish = (extraError?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(checker.result(startedAt, performance.now(), extraError));
    };
    const unsubscribe = client.subscribe<GraphQLResult['data']>(request, {
      next: (result) => checker.onResult(result as GraphQLResult, performance.now()),
      error: (error) => finish(`graphql-ws error: ${describe(error)}`),
      complete: () => finish(),
    });
    const timer = setTimeout(() => {
      unsubscribe();
      finish(`timed out after ${options.timeoutMs} ms`);
    }, options.timeoutMs);
    const onAbort = () => {
      unsubscribe();
      finish('aborted by the benchmark');
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Follows an existing chat generation (`chatCompletionEvents(generationId)`, from its first event)
 * over an open graphql-ws client. `onOpen` fires on the first event, the replayed
 * `ChatCompletionStarted`. Resolves (never rejects) with the same checks as {@link streamWebSocket}:
 * contiguous sequences from 1, started first, one terminal event last, completed text equal to the
 * deltas; closing it early (timeout, `signal`) leaves the generation running.
 */
export function followWebSocket(client: Client, generationId: string, options: StreamOptions): Promise<StreamResult> {
  return subscribeChecked(client, { query: BENCH_FOLLOW_SUBSCRIPTION, variables: { generationId } }, options);
}
