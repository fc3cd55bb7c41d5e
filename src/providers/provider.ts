/**
 * The provider contract: a small spec with no implementation in it.
 *
 * A provider turns a chat request into an async stream of parts. It never knows about
 * GraphQL, HTTP transports of this service, event numbering or subscribers: the
 * generation service does all of that. Shapes follow the Vercel AI SDK's provider
 * spec (stream parts `text-delta` and `finish`) and the OpenAI chat completion fields
 * (`docs/protocols.md` §2).
 */

/** Who wrote a chat message: `tool` is the result of a tool call, sent back to the model. */
export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

/**
 * One part of a message's content (OpenAI's content parts): text, or an image by URL — an `https`
 * URL or a `data:` URI (`detail`: how closely the model looks, as OpenAI names it).
 */
export type ChatContentPart = { type: 'text'; text: string } | { type: 'image-url'; url: string; detail?: 'auto' | 'low' | 'high' };

/** A call of a tool the model made: its id (to answer it with), the tool's name, and its arguments as JSON text. */
export interface ChatToolCall {
  id: string;
  name: string;
  /** The arguments as the model wrote them: JSON text (not checked against the tool's schema). */
  arguments: string;
}

/**
 * One message of a chat. `content` is its text (for a message with `parts`, the text of its text
 * parts). A user message may carry `parts` with images; an assistant message the `toolCalls` it
 * made (its `content` may then be empty); a tool message the `toolCallId` it answers.
 */
export interface ChatMessage {
  role: ChatRole;
  content: string;
  parts?: ChatContentPart[];
  toolCalls?: ChatToolCall[];
  toolCallId?: string;
}

/** A tool the model may call: a name, what it does, and its parameters as a JSON Schema (an object schema). */
export interface ChatTool {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  /** Whether the model's arguments must follow `parameters` exactly (OpenAI's strict function calling). */
  strict?: boolean;
}

/** Whether the model may (`auto`), may not (`none`) or must (`required`) call a tool, or must call the one named. */
export type ChatToolChoice = 'auto' | 'none' | 'required' | { name: string };

/**
 * The shape of the reply: free text, any JSON object, or JSON matching `schema` (a JSON Schema;
 * `name` as OpenAI's `json_schema.name`; `strict`: the schema is enforced, not just suggested).
 */
export type ChatResponseFormat =
  | { type: 'text' }
  | { type: 'json-object' }
  | { type: 'json-schema'; schema: Record<string, unknown>; name?: string; description?: string; strict?: boolean };

/**
 * What a model can do: `chat` and `image` are the kinds of generation it serves; `tools` (tool
 * calling), `vision` (image parts), `json-schema` (JSON replies, to a schema) and `reasoning`
 * (a reasoning trace, a reasoning effort) are what a chat request may need of it.
 */
export type ModelCapability = 'chat' | 'image' | 'tools' | 'vision' | 'json-schema' | 'reasoning';

/** The chat features of {@link ModelCapability}. */
export type ChatFeature = Extract<ModelCapability, 'tools' | 'vision' | 'json-schema' | 'reasoning'>;

/**
 * Why a generation stopped, in the gateway's words. Maps OpenAI's `finish_reason`
 * values `stop`, `length`, `content_filter`, `tool_calls` (and the legacy `function_call`).
 */
export type FinishReason = 'stop' | 'length' | 'content-filter' | 'tool-calls';

/** Token counts of one generation; any count may be unknown. Units: tokens. */
export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
  totalTokens?: number;
}

/** A chat request after validation and model resolution; `model` is the provider's own model id. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  /**
   * How many of the first `messages` are a conversation's history that the gateway keeps (the
   * caller sent only the rest). A provider whose context cannot hold every message may leave out
   * the oldest of these, whole turns at a time (system messages stay); the caller's own messages are
   * never left out. Absent = 0.
   */
  historyLength?: number;
  /**
   * The gateway conversation this turn belongs to (REST `conversation_id`, GraphQL
   * `ChatCompletionInput.conversationId`), when the caller named one; `messages` already holds the
   * history the gateway keeps for it. A provider whose upstream keeps conversations on its side
   * (Copilot, `docs/protocols.md` §5) maps it to a conversation of its own; others ignore it.
   * Absent = the turn belongs to no conversation.
   */
  conversationId?: string;
  /** Sampling temperature, 0..2. */
  temperature?: number;
  /** Nucleus sampling probability mass, 0..1 (exclusive of 0). */
  topP?: number;
  /** Upper bound on generated tokens. */
  maxTokens?: number;
  /** Strings that end the generation when produced (not included in the output). */
  stop?: string[];
  seed?: number;
  /** Tools the model may call (needs the `tools` capability). */
  tools?: ChatTool[];
  toolChoice?: ChatToolChoice;
  /** Whether the model may make several tool calls in one turn. */
  parallelToolCalls?: boolean;
  /** The shape of the reply (`json-object`, `json-schema` need the `json-schema` capability). */
  responseFormat?: ChatResponseFormat;
  /** How much a reasoning model reasons before it answers. */
  reasoningEffort?: 'low' | 'medium' | 'high';
  /** The caller's key for this request only, used instead of the provider's configured key (providers without keys ignore it). Never logged. */
  apiKey?: string;
}

/**
 * One part of a chat stream.
 * - `text-delta`: text that arrived together (one upstream read may carry several tokens;
 *   providers hand it over as one part: every part becomes an event that each subscriber's
 *   GraphQL execution and socket write pay for, so fewer, larger parts cost less).
 * - `reasoning-delta`: text of the model's reasoning (kept apart from the reply).
 * - `tool-call-delta`: a piece of tool call number `index` of this turn: `id` and `name` come with
 *   its first piece, its JSON arguments arrive in pieces (`argumentsDelta`, concatenated in order).
 * - `finish`: the last part, with the reason (`tool-calls` when the turn ends in tool calls) and,
 *   when known, the usage.
 */
export type ChatStreamPart =
  | { type: 'text-delta'; text: string }
  | { type: 'reasoning-delta'; text: string }
  | { type: 'tool-call-delta'; index: number; id?: string; name?: string; argumentsDelta: string }
  | { type: 'finish'; finishReason: FinishReason; usage?: Usage };

/**
 * The part of `AbortSignal` that following an abort needs: `aborted`, `reason`, `throwIfAborted()`
 * and the `'abort'` event (dispatched once). undici's `request` accepts such an object as its
 * `signal`; `fetch` and `AbortSignal.any` need a real `AbortSignal`.
 */
export type AbortSignalLike = Pick<AbortSignal, 'aborted' | 'reason' | 'throwIfAborted' | 'addEventListener' | 'removeEventListener'>;

/** Options every streaming call takes. Aborting `signal` must stop the work promptly. */
export interface StreamOptions {
  /**
   * The caller's abort as a real `AbortSignal`, for `fetch`, `AbortSignal.any` and libraries. The
   * generation service makes it only when a provider reads it (see `generation-abort.ts`).
   */
  signal: AbortSignal;
  /**
   * The same abort without an `AbortSignal` (set by the generation service): a provider that only
   * listens for it, or hands it to undici's `request`, should prefer this to `signal`, which costs
   * every generation an `AbortSignal` that outlives a young-generation collection. Absent: use `signal`.
   */
  abort?: AbortSignalLike;
  /**
   * The consumer sends deltas at most this often (ms; its coalescing window, `DELTA_COALESCE_MS`).
   * A provider that produces tokens in-process (llama-cpp) may hand over its text at the same pace
   * (the first text at once) instead of waking the consumer for every token. Absent or 0: no hint.
   */
  deltaIntervalMs?: number;
  /**
   * With tracing on: W3C Trace Context headers (`traceparent`, `tracestate`;
   * https://www.w3.org/TR/trace-context/) to send with every upstream HTTP request of this call, so
   * an upstream that traces continues the gateway's trace. Absent: send none.
   */
  traceHeaders?: Readonly<Record<string, string>>;
}

/** A model a provider serves. `id` is unique within the provider. */
export interface ModelDescriptor {
  id: string;
  capabilities: ModelCapability[];
}

/** The answer of an availability check: `reason` says why when `available` is false. */
export interface Availability {
  available: boolean;
  reason?: string;
}

/**
 * An image request after validation and model resolution; `model` is the provider's own model id.
 * Size: either `width`/`height` (pixels, 32..2048) or `aspectRatio` (`"1:1"`, `"16:9"`, …) or
 * neither (the provider's default); each provider maps a ratio to the sizes its models like.
 */
export interface ImageRequest {
  model: string;
  prompt: string;
  /** Number of images, 1..4. */
  n: number;
  width?: number;
  height?: number;
  aspectRatio?: string;
  seed?: number;
  numInferenceSteps?: number;
  negativePrompt?: string;
  /** The caller's key for this request only, used instead of the provider's configured key (providers without keys ignore it). Never logged. */
  apiKey?: string;
}

/**
 * One image a provider produced: its bytes (`data`) or a URL to download them from (or both).
 * The generation service stores or inlines it; providers never write files.
 */
export interface ProviderImage {
  /** Where the provider serves the image (kept as `sourceUrl`); required when `data` is absent. */
  url?: string;
  data?: Uint8Array;
  /** MIME type when known (e.g. `image/png`); the bytes decide in the end. */
  mimeType?: string;
  /** Pixels. */
  width?: number;
  height?: number;
  seed?: number;
  revisedPrompt?: string;
}

/**
 * One part of an image stream.
 * - `progress`: what the provider says while it works (`progress` in 0..1 when it knows; `queuePosition` when queued).
 * - `image`: one finished image (a request for `n` images yields `n` of them).
 * - `finish`: the last part.
 */
export type ImageStreamPart =
  | { type: 'progress'; message?: string; progress?: number; queuePosition?: number }
  | { type: 'image'; image: ProviderImage }
  | { type: 'finish' };

/**
 * A source of generations: chat, images, or both. A provider implements `streamChat` when any
 * of its models has the `chat` capability and `generateImages` when any has `image`.
 */
export interface Provider {
  /** Stable id used in requests and responses, e.g. `llama-cpp`, `groq`. */
  readonly id: string;
  /** Human-readable name. */
  readonly label: string;
  readonly capabilities: readonly ModelCapability[];
  /** The models this provider serves now; never throws (an unreachable upstream lists its configured models or none). */
  listModels(): Promise<ModelDescriptor[]>;
  /** Whether the provider can serve requests now, and why not. Never throws. */
  checkAvailability(): Promise<Availability>;
  /**
   * Streams one chat completion.
   * @throws ProviderError for every failure the caller should report (before or during the stream);
   *   when `options.signal` aborts, the iterator throws the signal's reason or simply ends.
   */
  streamChat?(request: ChatRequest, options: StreamOptions): AsyncIterable<ChatStreamPart>;
  /**
   * Generates images, streaming progress, then each image, then `finish`.
   * @throws ProviderError as `streamChat` does.
   */
  generateImages?(request: ImageRequest, options: StreamOptions): AsyncIterable<ImageStreamPart>;
  /**
   * Starts the background work the provider needs, once the server listens (the `llama-cpp`
   * provider's default model download); resolves when it is under way, not when it is done.
   */
  start?(): Promise<void>;
  /** One line on background work in progress or failed (e.g. `downloading qwen…: 43 % (…)`), for `/healthz` and `/readyz`; undefined when there is none. */
  status?(): string | undefined;
  /**
   * One line while start-up work the provider needs before it can serve its models is still
   * running (the `llama-cpp` default model downloading), for `/readyz`, which is not ready
   * meanwhile; undefined before `start()`, and once that work is done, whether it succeeded or failed.
   */
  loading?(): string | undefined;
  /** Stops background work and releases models, sockets and timers. */
  close?(): Promise<void>;
  /** Requests waiting for a free slot of this provider now (for metrics); absent when the provider does not queue. */
  queueDepth?(): number;
}

/** A provider that serves chat. */
export type ChatProvider = Provider & Required<Pick<Provider, 'streamChat'>>;

/** A provider that serves images. */
export type ImageProvider = Provider & Required<Pick<Provider, 'generateImages'>>;

/**
 * Stable error codes a provider reports. They reach clients as `GenerationError.code`.
 * - `UPSTREAM_ERROR`: 5xx or an in-band error from the upstream.
 * - `UPSTREAM_TIMEOUT`: no response within the connect timeout, or no chunk within the idle timeout, or 408/504.
 * - `RATE_LIMITED`: HTTP 429 (`retryAfterMs` from `Retry-After` when sent).
 * - `UNAUTHORIZED` / `FORBIDDEN`: HTTP 401 / 403.
 * - `UPSTREAM_BAD_REQUEST`: other 4xx, e.g. the upstream rejected a parameter.
 * - `UPSTREAM_NOT_FOUND`: HTTP 404 (usually an unknown model upstream).
 * - `UPSTREAM_BAD_RESPONSE`: a reply that does not follow the protocol (malformed JSON, wrong shape).
 * - `UPSTREAM_CONNECTION_LOST`: the connection closed before the stream finished.
 * - `PROVIDER_UNAVAILABLE`: the provider cannot run (no model file, upstream unreachable).
 * - `PROVIDER_ERROR`: any other failure inside a provider.
 * - `UNSUPPORTED_INPUT`: the request needs something the model cannot do (tools, images, a JSON
 *   schema); the message names it.
 * - `CONTEXT_LENGTH_EXCEEDED`: the messages do not fit the model's context (a local model measures
 *   them before it starts; an OpenAI-compatible upstream says so with the error code
 *   `context_length_exceeded`, https://platform.openai.com/docs/guides/error-codes).
 */
export type ProviderErrorCode =
  | 'UPSTREAM_ERROR'
  | 'UPSTREAM_TIMEOUT'
  | 'RATE_LIMITED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'UPSTREAM_BAD_REQUEST'
  | 'UPSTREAM_NOT_FOUND'
  | 'UPSTREAM_BAD_RESPONSE'
  | 'UPSTREAM_CONNECTION_LOST'
  | 'PROVIDER_UNAVAILABLE'
  | 'PROVIDER_ERROR'
  | 'CONTEXT_LENGTH_EXCEEDED'
  | 'UNSUPPORTED_INPUT';

/** A provider failure with a stable code. Messages never contain API keys. */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly code: ProviderErrorCode;
  readonly provider: string;
  /** HTTP status of the upstream reply, when there was one. */
  readonly statusCode?: number;
  /** Milliseconds the upstream asked us to wait (`Retry-After`), when it said. */
  readonly retryAfterMs?: number;

  constructor(options: {
    code: ProviderErrorCode;
    provider: string;
    message: string;
    statusCode?: number;
    retryAfterMs?: number;
    cause?: unknown;
  }) {
    super(options.message, { cause: options.cause });
    this.code = options.code;
    this.provider = options.provider;
    if (options.statusCode !== undefined) this.statusCode = options.statusCode;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  /** Whether trying again (or another provider) may help: timeouts, lost connections, 408, 409, 429, 5xx. */
  get isRetryable(): boolean {
    if (this.code === 'UPSTREAM_TIMEOUT' || this.code === 'UPSTREAM_CONNECTION_LOST') return true;
    const status = this.statusCode;
    return status !== undefined && (status === 408 || status === 409 || status === 429 || status >= 500);
  }
}
