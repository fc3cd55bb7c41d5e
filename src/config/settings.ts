/**
 * Every setting of the gateway, each defined once: its environment variable, schema, default and
 * description, at the property of the configuration object it fills. `load-config.ts` reads the
 * tree into a `Config` (whose type follows from it), `scripts/print-configuration.ts` prints it as
 * `docs/configuration.md`. Provider and security settings are in `provider-settings.ts` and
 * `security-settings.ts`. Durations are in ms, sizes in bytes.
 */
import { z } from 'zod';
import { llamaCppSettings, providerSettings } from './provider-settings.js';
import { securitySettings } from './security-settings.js';
import { tracingSettings } from './tracing-settings.js';
import { modelPrices } from './price-settings.js';
import { conversationStore, databaseUrl, resolveConversationStore, resolveDatabase, usageQueueMax } from './storage-settings.js';
import { ConfigError, derived, setting, settingFamily, settingsOf } from './setting.js';
import {
  alternatives,
  booleanString,
  commaList,
  httpUrl,
  LOG_LEVELS,
  numberValue,
  oneOf,
  positiveInteger,
  text,
  wholeNumber,
  withoutTrailingSlashes,
} from './value-schemas.js';

const defaultMaxTokens = setting({
  name: 'DEFAULT_MAX_TOKENS',
  schema: wholeNumber,
  default: 0,
  documentedDefault: '`0` (none)',
  description:
    'token limit of chat requests that set none, sent to every provider; with none, a local model stops when its context is full and an upstream applies its own default',
});

const maxTokensLimit = setting({
  name: 'MAX_TOKENS_LIMIT',
  schema: positiveInteger,
  default: 131_072,
  description: 'largest `maxTokens` / `max_tokens` a request may ask for (`BAD_USER_INPUT` / 400 naming the limit beyond)',
});

const dataDir = setting({
  name: 'DATA_DIR',
  schema: text,
  default: './data',
  description: 'stored data: images in `DATA_DIR/images`, the embedded database in `DATA_DIR/db`',
});

const redisUrl = setting({
  name: 'REDIS_URL',
  schema: (name) => z.url({ error: `${name} must be a redis:// or rediss:// URL`, protocol: /^rediss?$/ }),
  documentedDefault: '— (in memory)',
  description: 'Redis shared by several instances (see [Scaling out](scaling-out.md)), e.g. `redis://127.0.0.1:6379/0`',
});

const role = setting({
  name: 'ROLE',
  schema: oneOf(['all', 'api', 'worker']),
  default: 'all',
  description:
    '`all` accepts requests and runs providers; `api` accepts requests and queues generations (BullMQ); `worker` runs queued generations (`api` and `worker` need `REDIS_URL`; see [Scaling out](scaling-out.md))',
});

/** The settings tree: its properties are those of `Config`. */
export const configurationSettings = {
  port: setting({
    name: 'PORT',
    schema: (name) => numberValue(name).int().min(0).max(65535, `${name} must be 0..65535`),
    default: 1337,
    description: 'HTTP port (GraphQL, SSE, graphql-ws, GraphiQL, `/healthz`)',
  }),
  host: setting({ name: 'HOST', schema: text, default: '127.0.0.1', description: 'address to listen on (`0.0.0.0` for all)' }),
  ...llamaCppSettings,
  defaultChatModel: setting({
    name: 'DEFAULT_CHAT_MODEL',
    schema: () => z.string(),
    documentedDefault: 'first chat model of the first available provider',
    description: 'model for requests with no `model`: an id or `provider:model`',
  }),
  generationRetentionMs: setting({
    name: 'GENERATION_RETENTION_MS',
    schema: positiveInteger,
    default: 3_600_000,
    description: 'how long a finished generation stays queryable and replayable',
  }),
  generationRetentionMax: setting({
    name: 'GENERATION_RETENTION_MAX',
    schema: positiveInteger,
    default: 10_000,
    description: 'most finished generations kept in memory; beyond it the oldest are forgotten early',
  }),
  deltaCoalesceMs: setting({
    name: 'DELTA_COALESCE_MS',
    schema: (name) => wholeNumber(name).max(1000, `${name} must be at most 1000`),
    default: 16,
    description:
      'shortest time between two `ChatTokenDelta` events of a generation; text arriving faster is grouped into one delta (the first is never delayed; `0` sends every delta at once)',
  }),
  /** `DEFAULT_MAX_TOKENS`; undefined when it is 0. */
  defaultMaxTokens: derived({ requested: defaultMaxTokens, limit: maxTokensLimit }, ({ requested, limit }) => {
    if (requested > limit) {
      throw new ConfigError(`Invalid configuration: ${defaultMaxTokens.name}: must be at most ${maxTokensLimit.name} (${limit}) (got ${requested})`);
    }
    return requested > 0 ? requested : undefined;
  }),
  maxTokensLimit,
  generationTimeoutMs: setting({
    name: 'GENERATION_TIMEOUT_MS',
    schema: positiveInteger,
    default: 600_000,
    description:
      'longest time one generation may run, a wait for a free model sequence or a worker included; it then fails with `GENERATION_TIMEOUT` (REST 504)',
  }),
  ...providerSettings,
  graphiql: setting({ name: 'GRAPHIQL', schema: booleanString, default: true, description: 'serve GraphiQL at `/graphql` to browsers' }),
  defaultImageModel: setting({
    name: 'DEFAULT_IMAGE_MODEL',
    schema: () => z.string(),
    documentedDefault: 'first image model of the first available provider',
    description: 'model for image requests with no `model`: an id or `provider:model`',
  }),
  dataDir,
  database: derived({ url: databaseUrl, dataDir }, resolveDatabase),
  usageQueueMax,
  modelPrices,
  redisUrl,
  subscriptionRecheckMs: setting({
    name: 'SUBSCRIPTION_RECHECK_MS',
    schema: positiveInteger,
    default: 5_000,
    description: 'with Redis: how often a waiting subscriber re-reads the event stream in case a publish was lost',
  }),
  generationLeaseMs: setting({
    name: 'GENERATION_LEASE_MS',
    schema: (name) => positiveInteger(name).min(300, `${name} must be at least 300`),
    default: 10_000,
    description:
      'with Redis: time to live of the owner lease of each generation an instance runs itself, not queued ones (renewed every third of it, at least `300`); a generation whose instance stops renewing it this long is ended by the others with `INSTANCE_LOST`',
  }),
  /** `ROLE`, which needs `REDIS_URL` unless it is `all`. */
  role: derived({ role, redisUrl }, (values) => {
    if (values.role !== 'all' && values.redisUrl === undefined) {
      throw new ConfigError(`Invalid configuration: ${role.name}: ${values.role} needs ${redisUrl.name} (the queue and the event streams live in Redis)`);
    }
    return values.role;
  }),
  workerConcurrency: setting({
    name: 'WORKER_CONCURRENCY',
    schema: positiveInteger,
    default: 4,
    description: 'role `worker`: generations run at once per provider queue',
  }),
  /** By provider id, lower-cased; a `_` in the variable's name is also read as `-` (both spellings are kept). */
  workerConcurrencyByProvider: settingFamily({
    name: 'WORKER_CONCURRENCY_{PROVIDER}',
    schema: () => {
      const message = 'must be a whole number above 0';
      return z.coerce.number({ error: message }).int(message).min(1, message);
    },
    description: 'role `worker`: the same for one provider, e.g. `WORKER_CONCURRENCY_LLAMA_CPP=1` (`_` stands for `-`)',
    collect: (limits) => {
      const byProvider: Record<string, number> = {};
      for (const [provider, limit] of Object.entries(limits)) {
        const id = provider.toLowerCase();
        byProvider[id] = limit;
        byProvider[id.replaceAll('_', '-')] = limit;
      }
      return byProvider;
    },
  }),
  workerLockMs: setting({
    name: 'WORKER_LOCK_MS',
    schema: positiveInteger,
    default: 30_000,
    description: 'roles `api`/`worker`: BullMQ job lock and stalled-check interval; a worker silent this long has lost its generation (`WORKER_LOST`)',
  }),
  queuePrefix: setting({
    name: 'QUEUE_PREFIX',
    schema: (name) => z.string().regex(/^[A-Za-z0-9_:.-]+$/, `${name} may hold letters, digits, _ : . and -`),
    default: 'bull',
    description: 'roles `api`/`worker`: prefix of the BullMQ keys in Redis (all instances of one deployment use the same)',
  }),
  publicBaseUrl: setting({
    name: 'PUBLIC_BASE_URL',
    schema: httpUrl,
    documentedDefault: '`http://localhost:{PORT}`',
    description: "base of the URLs handed out, such as image URLs (set it behind a proxy; never taken from the request's Host header)",
  }),
  imageDownloadMaxBytes: setting({
    name: 'IMAGE_DOWNLOAD_MAX_BYTES',
    schema: positiveInteger,
    default: 20 * 1024 * 1024,
    description: 'largest image accepted from a provider',
  }),
  imageDownloadTimeoutMs: setting({
    name: 'IMAGE_DOWNLOAD_TIMEOUT_MS',
    schema: positiveInteger,
    default: 60_000,
    description: 'time one image download (or one Pollinations image) may take',
  }),
  /** `CONVERSATION_STORE` or its default (see `resolveConversationStore`). */
  conversationStore: derived({ requested: conversationStore, databaseUrl, redisUrl }, resolveConversationStore),
  conversationMaxMessages: setting({
    name: 'CONVERSATION_MAX_MESSAGES',
    schema: positiveInteger,
    default: 200,
    description: 'most messages a conversation keeps (oldest non-system messages dropped first)',
  }),
  conversationMaxCharacters: setting({
    name: 'CONVERSATION_MAX_CHARACTERS',
    schema: positiveInteger,
    default: 200_000,
    description: 'most characters a conversation keeps (oldest non-system messages dropped first)',
  }),
  conversationRetentionMs: setting({
    name: 'CONVERSATION_RETENTION_MS',
    schema: positiveInteger,
    default: 86_400_000,
    description: 'a conversation without a new turn for this long is forgotten',
  }),
  shutdownGraceMs: setting({
    name: 'SHUTDOWN_GRACE_MS',
    schema: wholeNumber,
    default: 30_000,
    description: 'on SIGTERM/SIGINT, how long running generations may finish before they are cancelled (`0` = cancel at once); see [Operations](operations.md)',
  }),
  metricsEnabled: setting({ name: 'METRICS_ENABLED', schema: booleanString, default: true, description: 'serve Prometheus metrics at `GET /metrics`' }),
  /** OpenTelemetry tracing; undefined = off (see `tracing-settings.ts`). */
  tracing: tracingSettings,
  logLevel: setting({
    name: 'LOG_LEVEL',
    schema: oneOf(LOG_LEVELS),
    default: 'info',
    description: `least severe level written: ${alternatives(LOG_LEVELS.map((level) => `\`${level}\``))}; logs are JSON lines on standard output`,
  }),
  corsOrigins: setting({
    name: 'CORS_ORIGINS',
    schema: (name) =>
      commaList()
        .pipe(
          z.array(
            z.union([
              z.literal('*'),
              z
                .url({ error: `${name} must list origins like https://app.example.com, or *`, protocol: /^https?$/ })
                .refine(
                  (origin) => URL.canParse(origin) && new URL(origin).origin === withoutTrailingSlashes(origin),
                  `${name} must list origins (scheme, host and port, no path), or *`,
                ),
            ]),
          ),
        )
        .transform((origins) => origins.map(withoutTrailingSlashes)),
    default: [],
    documentedDefault: '— (same origin only)',
    description:
      'comma-separated origins whose browser pages may call the server (`https://app.example.com`), or `*` for any; never with credentials (see [Security](security.md))',
  }),
  security: securitySettings,
};

/** `CONFIG_FILE`: read by `loadConfig` before the others, from the environment only. */
export const configFileSetting = setting({
  name: 'CONFIG_FILE',
  schema: text,
  description: 'JSON file with any of the keys above (values as strings or as JSON values); the environment wins',
});

/** Every setting, in the order of the configuration reference. */
export const allSettings = [...settingsOf(configurationSettings), configFileSetting];
