/**
 * Configuration: environment variables (and an optional JSON file named by `CONFIG_FILE`)
 * turned into one typed, validated `Config`. Every variable is listed in the README's
 * configuration table; this file is the source of that table.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';

/** One OpenAI-compatible upstream (`../shared/reference/protocols.md` §2). */
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
  /** Headers added to every upstream request. */
  headers?: Record<string, string>;
  /** Time allowed for the upstream's response headers, ms. */
  connectTimeoutMs: number;
  /** Longest silence allowed between two stream chunks, ms. */
  idleTimeoutMs: number;
}

/** The whole service configuration. Durations in ms. */
export interface Config {
  port: number;
  host: string;
  /** Folder with `.gguf` files for the `llama-cpp` provider. */
  modelsDir: string;
  /** CPU threads llama.cpp uses per evaluation (see `../shared/guide/pitfalls.md`: never left to default). */
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
  upstreams: OpenAICompatibleUpstreamConfig[];
  /** Serve GraphiQL at `/graphql` to browsers. */
  graphiql: boolean;
}

/** Thrown for invalid configuration; `message` is one line naming the bad setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

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
  headers: z.record(z.string(), z.string()).optional(),
  connectTimeoutMs: positiveInteger('connectTimeoutMs').optional(),
  idleTimeoutMs: positiveInteger('idleTimeoutMs').optional(),
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
  UPSTREAM_CONNECT_TIMEOUT_MS: positiveInteger('UPSTREAM_CONNECT_TIMEOUT_MS').default(10_000),
  UPSTREAM_IDLE_TIMEOUT_MS: positiveInteger('UPSTREAM_IDLE_TIMEOUT_MS').default(30_000),
  OPENAI_COMPATIBLE_UPSTREAMS: z
    .unknown()
    .transform((value, context) => {
      if (typeof value !== 'string') return value;
      try {
        return JSON.parse(value) as unknown;
      } catch {
        context.addIssue({ code: 'custom', message: 'OPENAI_COMPATIBLE_UPSTREAMS must be a JSON array' });
        return z.NEVER;
      }
    })
    .pipe(z.array(upstreamSchema, { error: 'OPENAI_COMPATIBLE_UPSTREAMS must be a JSON array of upstreams' }))
    .optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.url({ error: 'OPENAI_BASE_URL must be an http(s) URL' }).default('https://api.openai.com/v1'),
  GRAPHIQL: booleanString.default(true),
});

/** Formats the first zod issue as `NAME[.path]: message (got value)`. */
function describeIssue(issue: z.core.$ZodIssue, input: Record<string, unknown>): string {
  const path = issue.path.map(String);
  const name = path.join('.') || 'configuration';
  const top = path[0];
  const got = top !== undefined && path.length === 1 && input[top] !== undefined ? ` (got ${JSON.stringify(input[top])})` : '';
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
      ...(upstream.headers !== undefined && { headers: upstream.headers }),
      connectTimeoutMs: upstream.connectTimeoutMs ?? connectTimeoutMs,
      idleTimeoutMs: upstream.idleTimeoutMs ?? idleTimeoutMs,
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
    });
  }
  const seen = new Set<string>(['llama-cpp']);
  for (const upstream of upstreams) {
    if (seen.has(upstream.id)) {
      throw new ConfigError(`Invalid configuration: OPENAI_COMPATIBLE_UPSTREAMS: provider id "${upstream.id}" is used twice`);
    }
    seen.add(upstream.id);
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
    upstreams,
    graphiql: values.GRAPHIQL,
  };
}
