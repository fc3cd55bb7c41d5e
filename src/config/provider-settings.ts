/**
 * Settings of the providers (llama.cpp, OpenAI-compatible upstreams, Gradio Spaces, Pollinations)
 * and of choosing among them (aliases, order, circuit breaker); the Gradio Spaces' own settings are
 * in `space-settings.ts`, Copilot's in `copilot-settings.ts`. Part of the settings tree of
 * `settings.ts`; see `setting.ts` for how a setting is defined.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { COPILOT_MODEL_ALIASES, copilotEnabled, copilotSettings } from './copilot-settings.js';
import { ConfigError, derived, setting, type Environment, type SourceValues } from './setting.js';
import { huggingFaceSpaces } from './space-settings.js';
import { booleanString, commaList, httpUrl, jsonArray, jsonValue, oneOf, positiveInteger, text, withoutTrailingSlashes } from './value-schemas.js';

/**
 * The model fetched on a first start with an empty `MODELS_DIR`: Qwen2.5-0.5B-Instruct (Apache 2.0)
 * from the Qwen team's own GGUF repository, quantised Q4_K_M. Chosen for a first run on any laptop:
 * small enough to download in minutes and run on a CPU, an instruct model with a chat template
 * (node-llama-cpp's Qwen chat wrapper, which also calls tools), 32 K tokens of context.
 * https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF
 */
export const DEFAULT_LLAMA_MODEL = 'hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf';

export const llamaCppSettings = {
  modelsDir: setting({
    name: 'MODELS_DIR',
    schema: text,
    default: './models',
    description: "folder of `.gguf` files for `llama-cpp`; a model's id is its file name without `.gguf`",
  }),
  llamaThreads: setting({
    name: 'LLAMA_THREADS',
    schema: positiveInteger,
    default: () => availableParallelism(),
    documentedDefault: 'number of CPU cores',
    description: 'CPU threads llama.cpp uses per evaluation; always set explicitly (see below)',
    details: {
      title: 'llama.cpp threads',
      text:
        '`node-llama-cpp` left to pick its own thread count starts one thread per CPU core, and on a small machine those ' +
        'threads compete with the event loop and with each other: a 2-core machine ran a small model many times slower that way ' +
        'than with one thread. `LLAMA_THREADS` is therefore always passed; on a small machine, 1 leaves a core for the event loop.',
    },
  }),
  llamaContextSize: setting({
    name: 'LLAMA_CONTEXT_SIZE',
    schema: positiveInteger,
    default: 2048,
    description: "context size of each sequence, tokens (capped at the model's training context)",
  }),
  llamaSequences: setting({
    name: 'LLAMA_SEQUENCES',
    schema: positiveInteger,
    default: 4,
    description: 'generations one model runs at once (batched); more wait in a queue',
  }),
  llamaDefaultModel: setting({
    name: 'LLAMA_DEFAULT_MODEL',
    schema: (name) =>
      z
        .string()
        .trim()
        .refine((value) => value === 'none' || /^hf:[^/\s#]+\/[^/\s#]+\/[^\s#]+\.gguf(#[^\s#]+)?$/i.test(value) || /^https?:\/\/\S+$/i.test(value), {
          error: `${name} must be none, hf:<owner>/<repository>/<file>.gguf (optionally #<revision>) or an http(s) URL of a .gguf file`,
        }),
    default: DEFAULT_LLAMA_MODEL,
    description:
      'model downloaded into `MODELS_DIR` on the first start when that folder holds no `.gguf` file: an `hf:<owner>/<repository>/<file>.gguf` URI ' +
      '(`#<revision>` optional) or an http(s) URL; `none` turns the download off',
  }),
  huggingFaceEndpoint: setting({
    name: 'HF_ENDPOINT',
    schema: httpUrl,
    default: 'https://huggingface.co',
    description: 'base URL of the Hugging Face Hub that `hf:` model URIs are fetched from (the name huggingface_hub uses; a mirror or a local copy of the Hub)',
  }),
  llamaGpu: setting({
    name: 'LLAMA_GPU',
    schema: (name) => oneOf(['auto', 'false', 'cuda', 'vulkan', 'metal'])(name).transform((gpu) => (gpu === 'false' ? false : gpu)),
    default: 'auto',
    description: '`auto` (node-llama-cpp picks a GPU backend), `false` (CPU only), `cuda`, `vulkan` or `metal`; never builds or downloads binaries',
  }),
};

const upstreamConnectTimeout = setting({
  name: 'UPSTREAM_CONNECT_TIMEOUT_MS',
  schema: positiveInteger,
  default: 10_000,
  description: 'time an upstream has to send its response headers',
});

const upstreamIdleTimeout = setting({
  name: 'UPSTREAM_IDLE_TIMEOUT_MS',
  schema: positiveInteger,
  default: 30_000,
  description: 'longest silence allowed between two chunks of a stream',
});

const imageGenerationTimeout = setting({
  name: 'IMAGE_GENERATION_TIMEOUT_MS',
  schema: positiveInteger,
  default: 180_000,
  description: 'time an OpenAI-compatible `/images/generations` call may take (per upstream: `imageTimeoutMs`)',
});

/** One entry of `OPENAI_COMPATIBLE_UPSTREAMS` (`docs/protocols.md` §2). */
const upstreamSchema = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'id must be lowercase letters, digits, "-" or "_"')
    .describe('provider id used in requests, e.g. `groq`: lowercase letters, digits, `-` and `_`'),
  label: z.string().optional().describe('name shown for the provider (default: its `id`)'),
  baseURL: httpUrl('baseURL').describe('base URL that `/chat/completions`, `/models` and `/images/generations` are appended to, e.g. `https://api.groq.com/openai/v1`'),
  apiKey: z.string().optional().describe('sent as `Authorization: Bearer …`; never logged or returned in errors'),
  apiKeyEnv: z.string().optional().describe('instead of `apiKey`: the name of an environment variable holding the key, to keep keys out of files'),
  models: z.array(z.string().min(1)).optional().describe('chat model ids served; absent = discovered with `GET {baseURL}/models`'),
  imageModels: z
    .array(z.string().min(1))
    .optional()
    .describe('image model ids, served by `POST {baseURL}/images/generations` (never discovered); replies with `url` or `b64_json` both work'),
  headers: z.record(z.string(), z.string()).optional().describe('headers added to every request'),
  connectTimeoutMs: positiveInteger('connectTimeoutMs').optional().describe(`time the upstream has to send its response headers, ms (default \`${upstreamConnectTimeout.name}\`)`),
  idleTimeoutMs: positiveInteger('idleTimeoutMs').optional().describe(`longest silence allowed between two chunks of a stream, ms (default \`${upstreamIdleTimeout.name}\`)`),
  imageTimeoutMs: positiveInteger('imageTimeoutMs')
    .optional()
    .describe(`time an image request may take until the upstream answers (it answers once the image exists), ms (default \`${imageGenerationTimeout.name}\`)`),
});

type UpstreamEntry = z.output<typeof upstreamSchema>;

/**
 * One OpenAI-compatible upstream as the provider gets it (`docs/protocols.md` §2): an entry of
 * `OPENAI_COMPATIBLE_UPSTREAMS` (fields described there) with `apiKeyEnv` resolved into `apiKey`
 * and the timeouts (ms) filled in from the `UPSTREAM_…` settings.
 */
export type OpenAICompatibleUpstreamConfig = Omit<UpstreamEntry, 'apiKeyEnv' | 'connectTimeoutMs' | 'idleTimeoutMs'> &
  Required<Pick<UpstreamEntry, 'connectTimeoutMs' | 'idleTimeoutMs'>>;

const upstreamSources = {
  configured: setting({
    name: 'OPENAI_COMPATIBLE_UPSTREAMS',
    schema: jsonArray(upstreamSchema),
    default: [],
    description: 'JSON array of upstreams, see below',
    fields: upstreamSchema,
    details: {
      title: 'OpenAI-compatible upstreams',
      text: [
        '```sh',
        'export GROQ_API_KEY=gsk_...',
        "export OPENAI_COMPATIBLE_UPSTREAMS='[",
        '  {"id": "groq", "label": "Groq", "baseURL": "https://api.groq.com/openai/v1", "apiKeyEnv": "GROQ_API_KEY"},',
        '  {"id": "ollama", "baseURL": "http://127.0.0.1:11434/v1", "models": ["llama3.2"]},',
        '  {"id": "pollinations", "baseURL": "https://text.pollinations.ai/openai", "models": ["openai"]}',
        "]'",
        'npm start',
        '```',
        '',
        'Chat requests go to `POST {baseURL}/chat/completions` with `stream: true` and `stream_options.include_usage`; ' +
          'closing a subscription closes the upstream connection. Provider ids are unique: `llama-cpp`, `hf-space`, ' +
          '`pollinations` and `copilot` are taken.',
      ].join('\n'),
    },
  }),
  connectTimeoutMs: upstreamConnectTimeout,
  idleTimeoutMs: upstreamIdleTimeout,
  openAIKey: setting({
    name: 'OPENAI_API_KEY',
    schema: () => z.string(),
    description: 'shortcut: adds an upstream `openai` with this key (unless `OPENAI_COMPATIBLE_UPSTREAMS` has one)',
  }),
  openAIBaseURL: setting({
    name: 'OPENAI_BASE_URL',
    schema: (name) => z.url({ error: `${name} must be an http(s) URL` }).transform(withoutTrailingSlashes),
    default: 'https://api.openai.com/v1',
    description: 'base URL of that `openai` upstream',
  }),
  imageTimeoutMs: imageGenerationTimeout,
};

/**
 * The upstreams: `OPENAI_COMPATIBLE_UPSTREAMS`, then `openai` from `OPENAI_API_KEY`.
 * @throws ConfigError when an `apiKeyEnv` variable is not set or a provider id is used twice.
 */
function resolveUpstreams(values: SourceValues<typeof upstreamSources>, environment: Environment): OpenAICompatibleUpstreamConfig[] {
  const { connectTimeoutMs, idleTimeoutMs, imageTimeoutMs } = values;
  const upstreams = values.configured.map(({ apiKeyEnv, ...upstream }, index): OpenAICompatibleUpstreamConfig => {
    const apiKey = upstream.apiKey ?? (apiKeyEnv ? environment[apiKeyEnv] : undefined);
    if (apiKeyEnv && !apiKey) {
      throw new ConfigError(`Invalid configuration: ${upstreamSources.configured.name}.${index}.apiKeyEnv: environment variable ${apiKeyEnv} is not set`);
    }
    return {
      ...upstream,
      ...(apiKey !== undefined && { apiKey }),
      connectTimeoutMs: upstream.connectTimeoutMs ?? connectTimeoutMs,
      idleTimeoutMs: upstream.idleTimeoutMs ?? idleTimeoutMs,
      imageTimeoutMs: upstream.imageTimeoutMs ?? imageTimeoutMs,
    };
  });
  if (values.openAIKey && !upstreams.some((upstream) => upstream.id === 'openai')) {
    upstreams.push({ id: 'openai', label: 'OpenAI', baseURL: values.openAIBaseURL, apiKey: values.openAIKey, connectTimeoutMs, idleTimeoutMs, imageTimeoutMs });
  }
  const seen = new Set<string>(['llama-cpp', 'hf-space', 'pollinations', 'copilot']);
  for (const upstream of upstreams) {
    if (seen.has(upstream.id)) {
      throw new ConfigError(`Invalid configuration: ${upstreamSources.configured.name}: provider id "${upstream.id}" is used twice`);
    }
    seen.add(upstream.id);
  }
  return upstreams;
}

const pollinationsSources = {
  enabled: setting({ name: 'POLLINATIONS_ENABLED', schema: booleanString, default: true, description: 'the `pollinations` provider' }),
  imageBaseURL: setting({ name: 'POLLINATIONS_IMAGE_BASE_URL', schema: httpUrl, default: 'https://image.pollinations.ai', description: "Pollinations' image API" }),
  textBaseURL: setting({
    name: 'POLLINATIONS_TEXT_BASE_URL',
    schema: httpUrl,
    default: 'https://text.pollinations.ai/openai',
    description: "Pollinations' OpenAI-compatible text API",
  }),
  imageModels: setting({ name: 'POLLINATIONS_IMAGE_MODELS', schema: commaList, default: 'flux,turbo', description: 'image models offered through `pollinations`' }),
  textModels: setting({ name: 'POLLINATIONS_TEXT_MODELS', schema: commaList, default: 'openai', description: 'chat models offered through `pollinations`' }),
};

/**
 * Aliases that exist unless `MODEL_ALIASES` replaces them: gpt4free's model names `flux`,
 * `flux-schnell` and `flux-dev` (`docs/protocols.md` §6). `flux` stays FLUX.1-schnell, which needs
 * no token, though gpt4free's FLUX.1-dev provider answers to it too.
 */
const DEFAULT_MODEL_ALIASES: Readonly<Record<string, string[]>> = {
  flux: ['hf-space:flux-1-schnell', 'pollinations:flux'],
  'flux-schnell': ['hf-space:flux-1-schnell', 'pollinations:flux'],
  'flux-dev': ['hf-space:flux-1-dev'],
};

const modelAliases = setting({
  name: 'MODEL_ALIASES',
  schema: jsonValue('a JSON object', (name) =>
    z.record(z.string().min(1), z.union([z.string().min(1).transform((target) => [target]), z.array(z.string().min(1)).min(1)]), {
      error: `${name} must map names to a target or a list of targets`,
    }),
  ),
  default: {},
  documentedDefault: `\`${JSON.stringify(DEFAULT_MODEL_ALIASES)}\`, and with \`${copilotEnabled.name}\` \`${JSON.stringify(COPILOT_MODEL_ALIASES)}\``,
  description:
    'JSON object: alias → a target or a list of targets (`provider:model` or model ids), tried in order; an alias named here ' +
    'replaces the built-in one of that name, and a built-in alias is not used while a provider outside its targets serves a model of that very name',
});

export const providerSettings = {
  upstreams: derived(upstreamSources, resolveUpstreams),
  upstreamConnectTimeoutMs: upstreamConnectTimeout,
  upstreamIdleTimeoutMs: upstreamIdleTimeout,
  huggingFaceSpaces,
  huggingFaceToken: setting({
    name: 'HF_TOKEN',
    schema: () => z.string(),
    description: 'Hugging Face token sent to Spaces and to the Hub for model downloads as `Authorization: Bearer …` (more quota, gated models); never logged',
  }),
  huggingFaceSpaceTimeoutMs: setting({
    name: 'HF_SPACE_TIMEOUT_MS',
    schema: positiveInteger,
    default: 300_000,
    description: 'whole time one Space generation may take (queue included)',
  }),
  huggingFaceSpaceMaxReads: setting({
    name: 'HF_SPACE_MAX_READS',
    schema: positiveInteger,
    default: 3,
    description: "how often a Space's result stream is read when it ends without a result",
  }),
  pollinations: derived(pollinationsSources, ({ enabled, ...pollinations }) => (enabled ? pollinations : undefined)),
  ...copilotSettings,
  modelAliases,
  /**
   * The built-in aliases that `MODEL_ALIASES` does not replace. Configuration beats them: a built-in
   * alias is not used while a provider outside its targets serves a model of that very name (see
   * `ProviderRegistryOptions.defaultAliases`).
   */
  defaultModelAliases: derived({ configured: modelAliases, copilot: copilotEnabled }, ({ configured, copilot }) =>
    Object.fromEntries(
      Object.entries({ ...DEFAULT_MODEL_ALIASES, ...(copilot && COPILOT_MODEL_ALIASES) }).filter(([alias]) => !(alias in configured)),
    ),
  ),
  providerOrder: setting({
    name: 'PROVIDER_ORDER',
    schema: commaList,
    default: [],
    description:
      'comma-separated provider ids tried first, in this order; the others follow in the order `llama-cpp`, the upstreams in the order configured, `hf-space`, `pollinations`, `copilot`',
  }),
  breakerEnabled: setting({ name: 'BREAKER_ENABLED', schema: booleanString, default: true, description: 'skip failing providers for a cool-down (circuit breaker)' }),
  breakerFailureThreshold: setting({
    name: 'BREAKER_FAILURE_THRESHOLD',
    schema: positiveInteger,
    default: 3,
    description: "failures in a row that open a provider's circuit",
  }),
  breakerCooldownMs: setting({ name: 'BREAKER_COOLDOWN_MS', schema: positiveInteger, default: 60_000, description: 'how long an open circuit skips its provider' }),
};
