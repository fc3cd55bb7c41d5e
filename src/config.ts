/**
 * Configuration: environment variables (and an optional JSON file named by `CONFIG_FILE`)
 * turned into one typed, validated `Config`. Every variable is listed in the README's
 * configuration table; this file is the source of that table.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import type { LogLevel } from './operations/logger.js';
import { hashApiKey, parseApiKeysFile } from './security/api-keys.js';

/** One OpenAI-compatible upstream (`docs/protocols.md` §2). */
export interface OpenAICompatibleUpstreamConfig {
  /** Provider id used in requests, e.g. `groq`. Lowercase letters, digits, `-` and `_`. */
  id: string;
  label?: string;
  /** Base URL that `/chat/completions` and `/models` are appended to, e.g. `https://api.groq.com/openai/v1`. */
  baseURL: string;
  /** Sent as `Authorization: Bearer …`; never logged or returned in errors. */
  apiKey?: string;
  /** Model ids served; absent = discovered with `GET {baseURL}/models`. */
  models?: string[];
  /** Image model ids served through `POST {baseURL}/images/generations` (never discovered). */
  imageModels?: string[];
  /** Headers added to every upstream request. */
  headers?: Record<string, string>;
  /** Time allowed for the upstream's response headers, ms. */
  connectTimeoutMs: number;
  /** Longest silence allowed between two stream chunks, ms. */
  idleTimeoutMs: number;
  /** Time an image request may take until the upstream answers (it answers once the image exists), ms. */
  imageTimeoutMs?: number;
}

/**
 * One Gradio image Space spoken to over Gradio's "call" API (`docs/protocols.md` §3).
 * Each space is one image model of the `hf-space` provider.
 */
export interface HuggingFaceSpaceConfig {
  /** Model id clients request, e.g. `flux-1-schnell`. */
  model: string;
  label?: string;
  /** The space's own host, e.g. `https://black-forest-labs-flux-1-schnell.hf.space`. */
  baseURL: string;
  /** Gradio endpoint name: `POST {baseURL}/call/{endpoint}`, e.g. `infer`. */
  endpoint: string;
  /**
   * The `data` list sent. String items that are exactly one placeholder are replaced by the
   * value (keeping its type): `{prompt}`, `{negativePrompt}`, `{seed}` (0 when none was asked),
   * `{randomizeSeed}` (true when no seed was asked), `{width}`, `{height}`, `{steps}`; other items pass as they are.
   */
  inputs: unknown[];
  /** Index of the Gradio file object (`{url, path, mime_type, …}`) in the `complete` data list. */
  imageIndex: number;
  /** Index of the seed the space used in the `complete` data list, when it reports one. */
  seedIndex?: number;
  /** Pixels used when a request gives neither size nor aspect ratio. */
  defaultWidth: number;
  defaultHeight: number;
  /** Inference steps used when a request gives none. */
  defaultSteps: number;
}

/** Authentication and limits (README "Security"). Counts of 0 turn a limit off. */
export interface SecurityConfig {
  /**
   * sha256 hex digests of the accepted API keys: `API_KEYS` (hashed when loaded; the plain keys are
   * not kept) and the lines of `API_KEYS_FILE`. Empty = authentication is off.
   */
  apiKeyDigests: string[];
  /** Generation starts one caller (API key, or IP address when authentication is off) may make per minute. */
  rateLimitPerMinute: number;
  /** Generations one caller may have running at once. */
  maxConcurrentGenerationsPerKey: number;
  /** graphql-armor limits of one operation: depth, cost, aliases, lexical tokens, directives. */
  graphqlMaxDepth: number;
  graphqlMaxCost: number;
  graphqlMaxAliases: number;
  graphqlMaxTokens: number;
  graphqlMaxDirectives: number;
  /** Require the `x-graphql-yoga-csrf` header on GraphQL requests a browser could send cross-site without a preflight. */
  csrfPrevention: boolean;
  /** Answer introspection queries (GraphiQL needs them). */
  introspection: boolean;
  /** Largest request body accepted by `/graphql` and `/v1`, bytes. */
  maxRequestBodyBytes: number;
  /** Longest image prompt (and negative prompt), characters (at most 8000). */
  maxPromptCharacters: number;
  /** Most messages in one chat request. */
  maxMessages: number;
  /** Longest content of one chat message, characters. */
  maxMessageCharacters: number;
  /** Let image downloads reach private, loopback, link-local and unique-local addresses. */
  allowPrivateNetworkDownloads: boolean;
  /**
   * Reverse proxies in front of the gateway whose `X-Forwarded-For` names the client (Express'
   * `trust proxy` hop count): 0 = none (the connection's address), `Infinity` = all (`TRUST_PROXY=true`).
   */
  trustedProxyHops: number;
}

/** The whole service configuration. Durations in ms. */
export interface Config {
  port: number;
  host: string;
  /** Folder with `.gguf` files for the `llama-cpp` provider. */
  modelsDir: string;
  /** CPU threads llama.cpp uses per evaluation: always explicit, since llama.cpp left to itself starts one per core and oversubscribes a small machine. */
  llamaThreads: number;
  /** Context size of each loaded model, tokens, shared by its sequences. */
  llamaContextSize: number;
  /** How many generations one model runs at once (context sequences); more wait in a queue. */
  llamaSequences: number;
  /** `auto` lets node-llama-cpp pick a GPU backend; `false` forces the CPU. */
  llamaGpu: 'auto' | false | 'cuda' | 'vulkan' | 'metal';
  /** `provider:model` or a model id used when a chat request names no model; empty = first available chat model. */
  defaultChatModel?: string;
  /** How long a finished generation stays queryable and replayable, ms. */
  generationRetentionMs: number;
  /** Most finished generations kept in memory; the oldest go first. */
  generationRetentionMax: number;
  /** Shortest time between two token deltas of one generation, ms; faster text is grouped (0 = every delta at once). */
  deltaCoalesceMs: number;
  /**
   * Token limit of chat requests that set none, for every provider; undefined = none (a local model
   * then stops when its context is full, an upstream applies its own default).
   */
  defaultMaxTokens?: number;
  /** Largest token limit a chat request may ask for, tokens; more is refused with BAD_USER_INPUT. */
  maxTokensLimit: number;
  /** Longest time one generation may run, ms; it then ends FAILED with code GENERATION_TIMEOUT. */
  generationTimeoutMs: number;
  /**
   * Origins whose browser pages may call this server (CORS): exact origins (`https://app.example.com`),
   * or `*` for any origin (then without credentials). Empty = same origin only (no CORS headers).
   */
  corsOrigins: string[];
  upstreams: OpenAICompatibleUpstreamConfig[];
  /** Default time an upstream has to send response headers, ms. */
  upstreamConnectTimeoutMs: number;
  /** Default longest silence between two chunks of an upstream stream, ms. */
  upstreamIdleTimeoutMs: number;
  /** Serve GraphiQL at `/graphql` to browsers. */
  graphiql: boolean;
  /** `provider:model` or a model id used when an image request names no model; empty = first available image model. */
  defaultImageModel?: string;
  /** Alias → targets (`provider:model` or model ids), tried in order: `MODEL_ALIASES`. */
  modelAliases: Record<string, string[]>;
  /**
   * The built-in aliases (gpt4free's `flux`, `flux-schnell`) that `MODEL_ALIASES` does not replace.
   * Configuration beats them: a built-in alias is not used while a provider outside its targets
   * serves a model of that very name (see `ProviderRegistryOptions.defaultAliases`).
   */
  defaultModelAliases: Record<string, string[]>;
  /** Provider ids tried first, in this order, when a request does not name providers. */
  providerOrder: string[];
  /** Whether failing providers are skipped for a cool-down (circuit breaker). */
  breakerEnabled: boolean;
  /** Failures in a row that open a provider's circuit. */
  breakerFailureThreshold: number;
  /** How long an open circuit skips its provider, ms. */
  breakerCooldownMs: number;
  /** On SIGTERM/SIGINT, how long running generations may go on before they are cancelled, ms (0 = cancel at once). */
  shutdownGraceMs: number;
  /** Serve Prometheus metrics at `GET /metrics`. */
  metricsEnabled: boolean;
  /** Least severe log level written (JSON lines on standard output); `silent` writes none. */
  logLevel: LogLevel;
  /** Most messages a conversation keeps (oldest non-system messages dropped first). */
  conversationMaxMessages: number;
  /** Most characters a conversation keeps (oldest non-system messages dropped first). */
  conversationMaxCharacters: number;
  /** A conversation without a new turn for this long is forgotten, ms. */
  conversationRetentionMs: number;
  /** Redis for state shared between instances (event logs, generation records, pub/sub); undefined = in memory. */
  redisUrl?: string;
  /** Scaled out: how often a waiting subscriber re-reads the shared log in case a published event was lost, ms. */
  subscriptionRecheckMs: number;
  /**
   * Scaled out: time to live of the owner lease of each generation this instance runs itself (not
   * queued ones), ms, renewed every third of it; a generation whose instance stopped renewing it
   * this long is ended by other instances with `INSTANCE_LOST` (see generation-leases.ts).
   */
  generationLeaseMs: number;
  /**
   * What this instance does (needs Redis unless `all`): `all` accepts requests and runs providers;
   * `api` accepts requests and enqueues generations (BullMQ); `worker` runs the queued generations.
   */
  role: 'all' | 'api' | 'worker';
  /** Role `worker`: generations one worker runs at once per provider queue. */
  workerConcurrency: number;
  /** Role `worker`: per-provider concurrency from `WORKER_CONCURRENCY_{PROVIDER}`, by provider id (lower-cased; `_` also read as `-`). */
  workerConcurrencyByProvider: Record<string, number>;
  /** BullMQ job lock time and stalled-check interval, ms: a worker silent this long has lost its job (`WORKER_LOST`). */
  workerLockMs: number;
  /** Prefix of the BullMQ keys in Redis. */
  queuePrefix: string;
  /** Folder for stored data; images go to `{dataDir}/images`. */
  dataDir: string;
  /** Base of the URLs this service hands out (e.g. image URLs); undefined = `http://localhost:{bound port}`. */
  publicBaseUrl?: string;
  /** Largest image download accepted, bytes. */
  imageDownloadMaxBytes: number;
  /** Time allowed for one image download, ms. */
  imageDownloadTimeoutMs: number;
  /** Gradio Spaces of the `hf-space` provider; empty = the provider is off. */
  huggingFaceSpaces: HuggingFaceSpaceConfig[];
  /** Sent as `Authorization: Bearer …` to Spaces; never logged. */
  huggingFaceToken?: string;
  /** Whole time one Space generation may take, ms. */
  huggingFaceSpaceTimeoutMs: number;
  /** How many times a Space's result stream is read before giving up when it ends without `complete`. */
  huggingFaceSpaceMaxReads: number;
  /** The `pollinations` provider (images, and chat through its OpenAI-compatible text endpoint); undefined = off. */
  pollinations?: {
    imageBaseURL: string;
    textBaseURL: string;
    imageModels: string[];
    textModels: string[];
  };
  /** Authentication and limits. */
  security: SecurityConfig;
}

/** Thrown for invalid configuration; `message` is one line naming the bad setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A whole number, 0 or more (0 turns the limit it sets off). */
const wholeNumber = (name: string) =>
  z.coerce.number({ error: `${name} must be a number` }).int(`${name} must be a whole number`).min(0, `${name} must be 0 or more`);

const positiveInteger = (name: string) =>
  z.coerce.number({ error: `${name} must be a number` }).int(`${name} must be a whole number`).positive(`${name} must be greater than 0`);

const upstreamSchema = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'id must be lowercase letters, digits, "-" or "_"'),
  label: z.string().optional(),
  baseURL: z.url({ error: 'baseURL must be an http(s) URL', protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, '')),
  apiKey: z.string().optional(),
  /** Name of an environment variable holding the API key, so the key stays out of JSON files. */
  apiKeyEnv: z.string().optional(),
  models: z.array(z.string().min(1)).optional(),
  imageModels: z.array(z.string().min(1)).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  connectTimeoutMs: positiveInteger('connectTimeoutMs').optional(),
  idleTimeoutMs: positiveInteger('idleTimeoutMs').optional(),
  imageTimeoutMs: positiveInteger('imageTimeoutMs').optional(),
});

/**
 * A JSON value given as a string (environment) or already parsed (config file), then checked by
 * `shape`; text that is not JSON is the issue "`{name}` must be `{what}`".
 */
function jsonSetting<Shape extends z.ZodType>(name: string, what: string, shape: Shape) {
  return z
    .unknown()
    .transform((value, context) => {
      if (typeof value !== 'string') return value;
      try {
        return JSON.parse(value) as unknown;
      } catch {
        context.addIssue({ code: 'custom', message: `${name} must be ${what}` });
        return z.NEVER;
      }
    })
    .pipe(shape)
    .optional();
}

/** A JSON array given as a string (environment) or as JSON (config file); absent = `[]`. */
function jsonArray<Item extends z.ZodType>(name: string, item: Item) {
  return jsonSetting(name, 'a JSON array', z.array(item, { error: `${name} must be a JSON array` }));
}

/** `a, b ,c` → `['a', 'b', 'c']`; a JSON array of strings in a config file works too. */
const commaList = z.union([
  z.array(z.string().min(1)),
  z.string().transform((text) => text.split(',').map((item) => item.trim()).filter(Boolean)),
]);

const spaceSchema = z.object({
  model: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'model must be letters, digits, ".", "-" or "_"'),
  label: z.string().optional(),
  baseURL: z.url({ error: 'baseURL must be an http(s) URL', protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, '')),
  endpoint: z.string().regex(/^[A-Za-z0-9_-]+$/, 'endpoint must be a Gradio endpoint name like "infer"'),
  inputs: z.array(z.unknown()).min(1, 'inputs must list the data items'),
  imageIndex: z.number().int().min(0).default(0),
  seedIndex: z.number().int().min(0).optional(),
  defaultWidth: z.number().int().min(32).max(2048).default(1024),
  defaultHeight: z.number().int().min(32).max(2048).default(1024),
  defaultSteps: z.number().int().min(1).max(100).default(4),
});

const booleanString = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((value) => value === true || value === 'true' || value === '1');

const environmentSchema = z.object({
  PORT: z.coerce.number({ error: 'PORT must be a number' }).int().min(0).max(65535, 'PORT must be 0..65535').default(1337),
  HOST: z.string().min(1).default('127.0.0.1'),
  MODELS_DIR: z.string().min(1).default('./models'),
  LLAMA_THREADS: positiveInteger('LLAMA_THREADS').default(availableParallelism()),
  LLAMA_CONTEXT_SIZE: positiveInteger('LLAMA_CONTEXT_SIZE').default(2048),
  LLAMA_SEQUENCES: positiveInteger('LLAMA_SEQUENCES').default(4),
  LLAMA_GPU: z
    .enum(['auto', 'false', 'cuda', 'vulkan', 'metal'], { error: 'LLAMA_GPU must be auto, false, cuda, vulkan or metal' })
    .default('auto'),
  DEFAULT_CHAT_MODEL: z.string().optional(),
  GENERATION_RETENTION_MS: positiveInteger('GENERATION_RETENTION_MS').default(3_600_000),
  GENERATION_RETENTION_MAX: positiveInteger('GENERATION_RETENTION_MAX').default(10_000),
  DELTA_COALESCE_MS: z.coerce
    .number({ error: 'DELTA_COALESCE_MS must be a number' })
    .int('DELTA_COALESCE_MS must be a whole number')
    .min(0, 'DELTA_COALESCE_MS must be 0 or more')
    .max(1000, 'DELTA_COALESCE_MS must be at most 1000')
    .default(16),
  DEFAULT_MAX_TOKENS: wholeNumber('DEFAULT_MAX_TOKENS').default(0),
  MAX_TOKENS_LIMIT: positiveInteger('MAX_TOKENS_LIMIT').default(131_072),
  GENERATION_TIMEOUT_MS: positiveInteger('GENERATION_TIMEOUT_MS').default(600_000),
  CORS_ORIGINS: commaList.pipe(
    z.array(
      z.union([
        z.literal('*'),
        z.url({ error: 'CORS_ORIGINS must list origins like https://app.example.com, or *', protocol: /^https?$/ }).refine(
          (origin) => URL.canParse(origin) && new URL(origin).origin === origin.replace(/\/+$/, ''),
          'CORS_ORIGINS must list origins (scheme, host and port, no path), or *',
        ),
      ]),
    ),
  ).default([]),
  UPSTREAM_CONNECT_TIMEOUT_MS: positiveInteger('UPSTREAM_CONNECT_TIMEOUT_MS').default(10_000),
  UPSTREAM_IDLE_TIMEOUT_MS: positiveInteger('UPSTREAM_IDLE_TIMEOUT_MS').default(30_000),
  OPENAI_COMPATIBLE_UPSTREAMS: jsonArray('OPENAI_COMPATIBLE_UPSTREAMS', upstreamSchema),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.url({ error: 'OPENAI_BASE_URL must be an http(s) URL' }).default('https://api.openai.com/v1'),
  GRAPHIQL: booleanString.default(true),
  DEFAULT_IMAGE_MODEL: z.string().optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  REDIS_URL: z.url({ error: 'REDIS_URL must be a redis:// or rediss:// URL', protocol: /^rediss?$/ }).optional(),
  SUBSCRIPTION_RECHECK_MS: positiveInteger('SUBSCRIPTION_RECHECK_MS').default(5_000),
  GENERATION_LEASE_MS: positiveInteger('GENERATION_LEASE_MS').min(300, 'GENERATION_LEASE_MS must be at least 300').default(10_000),
  ROLE: z.enum(['all', 'api', 'worker'], { error: 'ROLE must be all, api or worker' }).default('all'),
  WORKER_CONCURRENCY: positiveInteger('WORKER_CONCURRENCY').default(4),
  WORKER_LOCK_MS: positiveInteger('WORKER_LOCK_MS').default(30_000),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_:.-]+$/, 'QUEUE_PREFIX may hold letters, digits, _ : . and -').default('bull'),
  PUBLIC_BASE_URL: z.url({ error: 'PUBLIC_BASE_URL must be an http(s) URL', protocol: /^https?$/ }).optional(),
  IMAGE_DOWNLOAD_MAX_BYTES: positiveInteger('IMAGE_DOWNLOAD_MAX_BYTES').default(20 * 1024 * 1024),
  IMAGE_DOWNLOAD_TIMEOUT_MS: positiveInteger('IMAGE_DOWNLOAD_TIMEOUT_MS').default(60_000),
  IMAGE_GENERATION_TIMEOUT_MS: positiveInteger('IMAGE_GENERATION_TIMEOUT_MS').default(180_000),
  HF_SPACES_ENABLED: booleanString.default(true),
  HF_FLUX_SCHNELL_URL: z
    .url({ error: 'HF_FLUX_SCHNELL_URL must be an http(s) URL', protocol: /^https?$/ })
    .default('https://black-forest-labs-flux-1-schnell.hf.space'),
  HF_SPACES: jsonArray('HF_SPACES', spaceSchema),
  HF_TOKEN: z.string().optional(),
  HF_SPACE_TIMEOUT_MS: positiveInteger('HF_SPACE_TIMEOUT_MS').default(300_000),
  HF_SPACE_MAX_READS: positiveInteger('HF_SPACE_MAX_READS').default(3),
  POLLINATIONS_ENABLED: booleanString.default(true),
  POLLINATIONS_IMAGE_BASE_URL: z
    .url({ error: 'POLLINATIONS_IMAGE_BASE_URL must be an http(s) URL', protocol: /^https?$/ })
    .default('https://image.pollinations.ai'),
  POLLINATIONS_TEXT_BASE_URL: z
    .url({ error: 'POLLINATIONS_TEXT_BASE_URL must be an http(s) URL', protocol: /^https?$/ })
    .default('https://text.pollinations.ai/openai'),
  POLLINATIONS_IMAGE_MODELS: commaList.default(['flux', 'turbo']),
  POLLINATIONS_TEXT_MODELS: commaList.default(['openai']),
  MODEL_ALIASES: jsonSetting(
    'MODEL_ALIASES',
    'a JSON object',
    z.record(
      z.string().min(1),
      z.union([z.string().min(1).transform((target) => [target]), z.array(z.string().min(1)).min(1)]),
      { error: 'MODEL_ALIASES must map names to a target or a list of targets' },
    ),
  ),
  PROVIDER_ORDER: commaList.default([]),
  BREAKER_ENABLED: booleanString.default(true),
  BREAKER_FAILURE_THRESHOLD: positiveInteger('BREAKER_FAILURE_THRESHOLD').default(3),
  BREAKER_COOLDOWN_MS: positiveInteger('BREAKER_COOLDOWN_MS').default(60_000),
  SHUTDOWN_GRACE_MS: z.coerce
    .number({ error: 'SHUTDOWN_GRACE_MS must be a number' })
    .int('SHUTDOWN_GRACE_MS must be a whole number')
    .min(0, 'SHUTDOWN_GRACE_MS must be 0 or more')
    .default(30_000),
  METRICS_ENABLED: booleanString.default(true),
  LOG_LEVEL: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
      error: 'LOG_LEVEL must be trace, debug, info, warn, error, fatal or silent',
    })
    .default('info'),
  CONVERSATION_MAX_MESSAGES: positiveInteger('CONVERSATION_MAX_MESSAGES').default(200),
  CONVERSATION_MAX_CHARACTERS: positiveInteger('CONVERSATION_MAX_CHARACTERS').default(200_000),
  CONVERSATION_RETENTION_MS: positiveInteger('CONVERSATION_RETENTION_MS').default(86_400_000),
  API_KEYS: commaList.default([]),
  API_KEYS_FILE: z.string().min(1).optional(),
  RATE_LIMIT_PER_MINUTE: wholeNumber('RATE_LIMIT_PER_MINUTE').default(60),
  MAX_CONCURRENT_GENERATIONS_PER_KEY: wholeNumber('MAX_CONCURRENT_GENERATIONS_PER_KEY').default(8),
  GRAPHQL_MAX_DEPTH: wholeNumber('GRAPHQL_MAX_DEPTH').default(10),
  GRAPHQL_MAX_COST: wholeNumber('GRAPHQL_MAX_COST').default(5000),
  GRAPHQL_MAX_ALIASES: wholeNumber('GRAPHQL_MAX_ALIASES').default(15),
  GRAPHQL_MAX_TOKENS: wholeNumber('GRAPHQL_MAX_TOKENS').default(1000),
  GRAPHQL_MAX_DIRECTIVES: wholeNumber('GRAPHQL_MAX_DIRECTIVES').default(50),
  CSRF_PREVENTION: booleanString.default(true),
  INTROSPECTION: booleanString.default(true),
  MAX_REQUEST_BODY_BYTES: positiveInteger('MAX_REQUEST_BODY_BYTES').default(1024 * 1024),
  MAX_PROMPT_CHARACTERS: positiveInteger('MAX_PROMPT_CHARACTERS').max(8000, 'MAX_PROMPT_CHARACTERS must be at most 8000').default(8000),
  MAX_MESSAGES: positiveInteger('MAX_MESSAGES').default(200),
  MAX_MESSAGE_CHARACTERS: positiveInteger('MAX_MESSAGE_CHARACTERS').default(100_000),
  ALLOW_PRIVATE_NETWORK_DOWNLOADS: booleanString.default(false),
  TRUST_PROXY: z
    .union([z.boolean(), z.number(), z.string()])
    .transform((value, context) => {
      const text = String(value).trim().toLowerCase();
      if (text === 'true') return Number.POSITIVE_INFINITY;
      if (text === 'false') return 0;
      if (/^\d+$/.test(text)) return Number(text);
      context.addIssue({ code: 'custom', message: 'TRUST_PROXY must be true, false or a number of trusted proxy hops (0 or more)' });
      return z.NEVER;
    })
    .default(0),
});

/**
 * The digests in `API_KEYS_FILE` (none when it is not set).
 * @throws ConfigError when the file cannot be read or a line is not a sha256 hex digest.
 */
function readApiKeysFile(path: string | undefined): string[] {
  if (path === undefined) return [];
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Invalid configuration: API_KEYS_FILE: cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return parseApiKeysFile(text, path);
  } catch (error) {
    throw new ConfigError(`Invalid configuration: API_KEYS_FILE: ${(error as Error).message}`);
  }
}

/**
 * `WORKER_CONCURRENCY_{PROVIDER}` variables: the key is the provider id as written after the prefix,
 * lower-cased with `_` read as `-` too (both spellings are kept, so `LLAMA_CPP` matches `llama-cpp`).
 * @throws ConfigError when a value is not a positive whole number.
 */
function workerConcurrencyByProvider(environment: Record<string, string | undefined>): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const [name, value] of Object.entries(environment)) {
    const match = /^WORKER_CONCURRENCY_(.+)$/.exec(name);
    if (!match || value === undefined || value === '') continue;
    const limit = Number(value);
    if (!Number.isInteger(limit) || limit < 1) throw new ConfigError(`Invalid configuration: ${name}: must be a whole number above 0 (got ${JSON.stringify(value)})`);
    const id = match[1]!.toLowerCase();
    limits[id] = limit;
    limits[id.replaceAll('_', '-')] = limit;
  }
  return limits;
}

/** Aliases that exist unless MODEL_ALIASES replaces them (gpt4free's `flux`, `protocols.md` §6). */
const DEFAULT_MODEL_ALIASES: Record<string, string[]> = {
  flux: ['hf-space:flux-1-schnell', 'pollinations:flux'],
  'flux-schnell': ['hf-space:flux-1-schnell', 'pollinations:flux'],
};

/** Formats the first zod issue as `NAME[.path]: message (got value)`. */
function describeIssue(issue: z.core.$ZodIssue, input: Record<string, unknown>): string {
  const path = issue.path.map(String);
  const name = path.join('.') || 'configuration';
  const top = path[0];
  const secret = top !== undefined && /KEY|TOKEN|SECRET|PASSWORD/i.test(top);
  const got = top !== undefined && !secret && path.length === 1 && input[top] !== undefined ? ` (got ${JSON.stringify(input[top])})` : '';
  return `${name}: ${issue.message}${got}`;
}

/**
 * Reads and validates the configuration.
 * @param environment variables, usually `process.env`; `CONFIG_FILE` names a JSON object with the same
 *   keys (values may be strings or JSON values); the environment wins over the file.
 * @throws ConfigError with one line naming the bad setting.
 */
export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  let fileValues: Record<string, unknown> = {};
  const configFile = environment.CONFIG_FILE;
  if (configFile) {
    try {
      const parsed = JSON.parse(readFileSync(configFile, 'utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      fileValues = parsed as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`CONFIG_FILE: cannot read ${configFile}: ${(error as Error).message}`);
    }
  }
  const input: Record<string, unknown> = { ...fileValues };
  for (const [key, value] of Object.entries(environment)) {
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = environmentSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(`Invalid configuration: ${describeIssue(result.error.issues[0]!, input)}`);
  }
  const values = result.data;
  const connectTimeoutMs = values.UPSTREAM_CONNECT_TIMEOUT_MS;
  const idleTimeoutMs = values.UPSTREAM_IDLE_TIMEOUT_MS;

  const upstreams: OpenAICompatibleUpstreamConfig[] = (values.OPENAI_COMPATIBLE_UPSTREAMS ?? []).map((upstream, index) => {
    const apiKey = upstream.apiKey ?? (upstream.apiKeyEnv ? environment[upstream.apiKeyEnv] : undefined);
    if (upstream.apiKeyEnv && !apiKey) {
      throw new ConfigError(
        `Invalid configuration: OPENAI_COMPATIBLE_UPSTREAMS.${index}.apiKeyEnv: environment variable ${upstream.apiKeyEnv} is not set`,
      );
    }
    return {
      id: upstream.id,
      ...(upstream.label !== undefined && { label: upstream.label }),
      baseURL: upstream.baseURL,
      ...(apiKey !== undefined && { apiKey }),
      ...(upstream.models !== undefined && { models: upstream.models }),
      ...(upstream.imageModels !== undefined && { imageModels: upstream.imageModels }),
      ...(upstream.headers !== undefined && { headers: upstream.headers }),
      connectTimeoutMs: upstream.connectTimeoutMs ?? connectTimeoutMs,
      idleTimeoutMs: upstream.idleTimeoutMs ?? idleTimeoutMs,
      imageTimeoutMs: upstream.imageTimeoutMs ?? values.IMAGE_GENERATION_TIMEOUT_MS,
    };
  });
  if (values.OPENAI_API_KEY && !upstreams.some((upstream) => upstream.id === 'openai')) {
    upstreams.push({
      id: 'openai',
      label: 'OpenAI',
      baseURL: values.OPENAI_BASE_URL.replace(/\/+$/, ''),
      apiKey: values.OPENAI_API_KEY,
      connectTimeoutMs,
      idleTimeoutMs,
      imageTimeoutMs: values.IMAGE_GENERATION_TIMEOUT_MS,
    });
  }
  const seen = new Set<string>(['llama-cpp', 'hf-space', 'pollinations']);
  for (const upstream of upstreams) {
    if (seen.has(upstream.id)) {
      throw new ConfigError(`Invalid configuration: OPENAI_COMPATIBLE_UPSTREAMS: provider id "${upstream.id}" is used twice`);
    }
    seen.add(upstream.id);
  }

  if (values.DEFAULT_MAX_TOKENS > values.MAX_TOKENS_LIMIT) {
    throw new ConfigError(`Invalid configuration: DEFAULT_MAX_TOKENS: must be at most MAX_TOKENS_LIMIT (${values.MAX_TOKENS_LIMIT}) (got ${values.DEFAULT_MAX_TOKENS})`);
  }

  if (values.ROLE !== 'all' && values.REDIS_URL === undefined) {
    throw new ConfigError(`Invalid configuration: ROLE: ${values.ROLE} needs REDIS_URL (the queue and the event streams live in Redis)`);
  }

  const huggingFaceSpaces: HuggingFaceSpaceConfig[] = [];
  if (values.HF_SPACES_ENABLED) {
    huggingFaceSpaces.push({
      model: 'flux-1-schnell',
      label: 'FLUX.1 [schnell] (black-forest-labs/FLUX.1-schnell)',
      baseURL: values.HF_FLUX_SCHNELL_URL.replace(/\/+$/, ''),
      endpoint: 'infer',
      inputs: ['{prompt}', '{seed}', '{randomizeSeed}', '{width}', '{height}', '{steps}'],
      imageIndex: 0,
      seedIndex: 1,
      defaultWidth: 1024,
      defaultHeight: 1024,
      defaultSteps: 4,
    });
    for (const space of values.HF_SPACES ?? []) {
      if (huggingFaceSpaces.some((existing) => existing.model === space.model)) {
        throw new ConfigError(`Invalid configuration: HF_SPACES: model "${space.model}" is used twice`);
      }
      huggingFaceSpaces.push({
        ...space,
        ...(space.label === undefined && { label: space.model }),
      } as HuggingFaceSpaceConfig);
    }
  }

  return {
    port: values.PORT,
    host: values.HOST,
    modelsDir: values.MODELS_DIR,
    llamaThreads: values.LLAMA_THREADS,
    llamaContextSize: values.LLAMA_CONTEXT_SIZE,
    llamaSequences: values.LLAMA_SEQUENCES,
    llamaGpu: values.LLAMA_GPU === 'false' ? false : values.LLAMA_GPU,
    ...(values.DEFAULT_CHAT_MODEL !== undefined && { defaultChatModel: values.DEFAULT_CHAT_MODEL }),
    generationRetentionMs: values.GENERATION_RETENTION_MS,
    generationRetentionMax: values.GENERATION_RETENTION_MAX,
    deltaCoalesceMs: values.DELTA_COALESCE_MS,
    ...(values.DEFAULT_MAX_TOKENS > 0 && { defaultMaxTokens: values.DEFAULT_MAX_TOKENS }),
    maxTokensLimit: values.MAX_TOKENS_LIMIT,
    generationTimeoutMs: values.GENERATION_TIMEOUT_MS,
    corsOrigins: values.CORS_ORIGINS.map((origin) => origin.replace(/\/+$/, '')),
    upstreams,
    upstreamConnectTimeoutMs: connectTimeoutMs,
    upstreamIdleTimeoutMs: idleTimeoutMs,
    graphiql: values.GRAPHIQL,
    ...(values.DEFAULT_IMAGE_MODEL !== undefined && { defaultImageModel: values.DEFAULT_IMAGE_MODEL }),
    modelAliases: values.MODEL_ALIASES ?? {},
    defaultModelAliases: Object.fromEntries(Object.entries(DEFAULT_MODEL_ALIASES).filter(([name]) => !(name in (values.MODEL_ALIASES ?? {})))),
    providerOrder: values.PROVIDER_ORDER,
    breakerEnabled: values.BREAKER_ENABLED,
    breakerFailureThreshold: values.BREAKER_FAILURE_THRESHOLD,
    breakerCooldownMs: values.BREAKER_COOLDOWN_MS,
    shutdownGraceMs: values.SHUTDOWN_GRACE_MS,
    metricsEnabled: values.METRICS_ENABLED,
    logLevel: values.LOG_LEVEL,
    conversationMaxMessages: values.CONVERSATION_MAX_MESSAGES,
    conversationMaxCharacters: values.CONVERSATION_MAX_CHARACTERS,
    conversationRetentionMs: values.CONVERSATION_RETENTION_MS,
    dataDir: values.DATA_DIR,
    ...(values.REDIS_URL !== undefined && { redisUrl: values.REDIS_URL }),
    subscriptionRecheckMs: values.SUBSCRIPTION_RECHECK_MS,
    generationLeaseMs: values.GENERATION_LEASE_MS,
    role: values.ROLE,
    workerConcurrency: values.WORKER_CONCURRENCY,
    workerConcurrencyByProvider: workerConcurrencyByProvider(environment),
    workerLockMs: values.WORKER_LOCK_MS,
    queuePrefix: values.QUEUE_PREFIX,
    ...(values.PUBLIC_BASE_URL !== undefined && { publicBaseUrl: values.PUBLIC_BASE_URL.replace(/\/+$/, '') }),
    imageDownloadMaxBytes: values.IMAGE_DOWNLOAD_MAX_BYTES,
    imageDownloadTimeoutMs: values.IMAGE_DOWNLOAD_TIMEOUT_MS,
    huggingFaceSpaces,
    ...(values.HF_TOKEN !== undefined && { huggingFaceToken: values.HF_TOKEN }),
    huggingFaceSpaceTimeoutMs: values.HF_SPACE_TIMEOUT_MS,
    huggingFaceSpaceMaxReads: values.HF_SPACE_MAX_READS,
    security: {
      apiKeyDigests: [...new Set([...values.API_KEYS.map(hashApiKey), ...readApiKeysFile(values.API_KEYS_FILE)])],
      rateLimitPerMinute: values.RATE_LIMIT_PER_MINUTE,
      maxConcurrentGenerationsPerKey: values.MAX_CONCURRENT_GENERATIONS_PER_KEY,
      graphqlMaxDepth: values.GRAPHQL_MAX_DEPTH,
      graphqlMaxCost: values.GRAPHQL_MAX_COST,
      graphqlMaxAliases: values.GRAPHQL_MAX_ALIASES,
      graphqlMaxTokens: values.GRAPHQL_MAX_TOKENS,
      graphqlMaxDirectives: values.GRAPHQL_MAX_DIRECTIVES,
      csrfPrevention: values.CSRF_PREVENTION,
      introspection: values.INTROSPECTION,
      maxRequestBodyBytes: values.MAX_REQUEST_BODY_BYTES,
      maxPromptCharacters: values.MAX_PROMPT_CHARACTERS,
      maxMessages: values.MAX_MESSAGES,
      maxMessageCharacters: values.MAX_MESSAGE_CHARACTERS,
      allowPrivateNetworkDownloads: values.ALLOW_PRIVATE_NETWORK_DOWNLOADS,
      trustedProxyHops: values.TRUST_PROXY,
    },
    ...(values.POLLINATIONS_ENABLED && {
      pollinations: {
        imageBaseURL: values.POLLINATIONS_IMAGE_BASE_URL.replace(/\/+$/, ''),
        textBaseURL: values.POLLINATIONS_TEXT_BASE_URL.replace(/\/+$/, ''),
        imageModels: values.POLLINATIONS_IMAGE_MODELS,
        textModels: values.POLLINATIONS_TEXT_MODELS,
      },
    }),
  };
}
