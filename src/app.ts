/**
 * The app factory: the providers, the generation service, the security layer and operations,
 * wired to one `node:http` server that carries GraphQL over HTTP and SSE (with GraphiQL),
 * graphql-ws on the same path, the REST API, stored images, the page, `/healthz`, `/readyz` and `/metrics`.
 * Only `main.ts` listens on the configured port; tests call `createApp(config).start()` with port 0.
 * With `REDIS_URL` the shared state (`scale-out/shared-state.ts`) is loaded and installed; a single
 * instance loads none of it.
 */
import { join } from 'node:path';
import type { Config } from './config.js';
import { MemoryConversationStore, type ConversationLimits, type ConversationStore } from './conversations/conversation-store.js';
import { DatabaseConversationStore } from './conversations/database-conversation-store.js';
import type { ConversationStoreKind } from './config/storage-settings.js';
import { createProviders } from './create-providers.js';
import { MemoryEventLog } from './generations/event-log.js';
import { createGenerationPubSub } from './generations/generation-pub-sub.js';
import { GenerationService } from './generations/generation-service.js';
import { ImageStore } from './images/image-store.js';
import { createLogger, type Logger } from './operations/logger.js';
import { createDatabaseCheck } from './operations/database-check.js';
import { createOperations } from './operations/operations.js';
import { CircuitBreaker } from './providers/circuit-breaker.js';
import { GPT4FREE_PROVIDER_NAMES } from './providers/gpt4free-provider-names.js';
import { ProviderRegistry } from './providers/provider-registry.js';
import type { Provider } from './providers/provider.js';
import { createRestApi } from './rest/rest-api.js';
import { createSecurity } from './security/security.js';
import { ApiKeyStore } from './storage/api-key-store.js';
import { GenerationStore } from './storage/generation-store.js';
import { TokenAccounting } from './security/token-accounting.js';
import { TokenBudgetLedger } from './security/token-budget-ledger.js';
import { TokenRateLimiter } from './security/token-rate-limiter.js';
import { VirtualKeys } from './security/virtual-keys.js';
import { openDatabase, type Database } from './storage/open-database.js';
import { UsageStore } from './storage/usage-store.js';
import { costOf } from './operations/model-prices.js';
import { UsageRecorder } from './operations/usage-recorder.js';
import { UsageReports } from './operations/usage-reports.js';
import { combineObservers } from './generations/generation-observer.js';
import { createCrossOriginHandler } from './transport/cross-origin.js';
import { createGraphQLServer, GRAPHQL_PATH } from './transport/graphql-server.js';
import { attachGraphQLWebSocketServer } from './transport/graphql-websocket-server.js';
import { createHttpServer, listen } from './transport/http-server.js';
import { createWebPage } from './web/web-page.js';

export { createProviders } from './create-providers.js';
export { GRAPHQL_PATH } from './transport/graphql-server.js';

/** A running (or startable) gateway. */
export interface App {
  /**
   * Listens on `config.host:config.port` (port 0 = any free port) and starts the providers'
   * background work; `/readyz` can answer 200 once it resolves. Resolves with the bound port and base URL.
   */
  start(): Promise<{ port: number; url: string }>;
  /**
   * Stops: refuses new generations and WebSocket connections at once (`/healthz` and `/readyz` answer 503), lets
   * running generations finish for up to `graceMs` (default 0: cancel at once; `main.ts` passes
   * `SHUTDOWN_GRACE_MS`), cancels the rest (`GenerationCancelled`, reason `server shutting down`),
   * waits for subscribers to get their terminal events, closes WebSockets (1001) and HTTP
   * connections, and releases the providers. Later calls return the first call's promise.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  readonly generations: GenerationService;
  readonly registry: ProviderRegistry;
  readonly conversations: ConversationStore;
  /** The durable records' database; undefined with `DATABASE_URL=none`. */
  readonly database: Database | undefined;
  /** Writes a row per ended generation to the database (`flush()` waits for it); undefined without one. */
  readonly usageRecorder: UsageRecorder | undefined;
}

/**
 * Creates the gateway from a validated configuration: opens the database (migrating it) and makes
 * the parts. Nothing listens until `start()`.
 * @throws DatabaseUnavailableError when the database cannot be opened (one line naming it).
 */
export async function createApp(config: Config, options: { providers?: Provider[]; logger?: Logger } = {}): Promise<App> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const database = config.database.driver === 'none' ? undefined : await openDatabase(config.database);
  const providers = options.providers ?? createProviders(config, { logger });
  const shared = config.redisUrl
    ? await (await import('./scale-out/shared-state.js')).createSharedState({ ...config, redisUrl: config.redisUrl }, providers.map((provider) => provider.id), logger)
    : undefined;

  const breakerOptions = { failureThreshold: config.breakerFailureThreshold, cooldownMs: config.breakerCooldownMs };
  const breaker = !config.breakerEnabled ? undefined : (shared?.createBreaker(breakerOptions) ?? new CircuitBreaker(breakerOptions));
  const registry = new ProviderRegistry(providers, {
    ...(config.defaultChatModel !== undefined && { defaultChatModel: config.defaultChatModel }),
    ...(config.defaultImageModel !== undefined && { defaultImageModel: config.defaultImageModel }),
    aliases: config.modelAliases,
    defaultAliases: config.defaultModelAliases,
    providerNames: GPT4FREE_PROVIDER_NAMES,
    order: config.providerOrder,
    ...(breaker && { breaker }),
  });
  const operations = createOperations({ config, registry, logger });
  // Tracing loads the OpenTelemetry SDK only when an OTLP endpoint is configured (operations/tracing/).
  const tracing = config.tracing && (await import('./operations/tracing/start-tracing.js')).startTracing(config.tracing, logger);
  // /readyz answers 503 "degraded" with the reason while Redis or the database is unreachable (ioredis and pg reconnect by themselves).
  if (shared) operations.addReadinessCheck(() => shared.unavailableReason());
  if (database) operations.addReadinessCheck(createDatabaseCheck(database));
  // Virtual keys live in the database (cached in memory); their tokens per minute in Redis when scaled out, budgets in the database.
  const cacheTtlMs = config.security.apiKeyCacheTtlMs;
  const virtualKeys = database && new VirtualKeys(new ApiKeyStore(database.db), { cacheTtlMs, cacheMaxEntries: config.security.apiKeyCacheMax });
  const virtualKeysExist = (await virtualKeys?.anyExist()) ?? false;
  // One row per ended generation, written behind the generations; /readyz degraded while they cannot be.
  const generationStore = database && new GenerationStore(database.db);
  const tokens =
    generationStore &&
    new TokenAccounting({
      ledger: new TokenBudgetLedger({ source: generationStore, cacheTtlMs, maxCachedSums: config.security.apiKeyCacheMax }),
      rateLimiter: new TokenRateLimiter({ windowMs: 60_000, ...(shared && { store: shared.tokenRateStore }), logger }),
    });
  const usageRecorder =
    generationStore &&
    new UsageRecorder({
      // Budgets count a generation from memory until its row is written, then from the database.
      store: {
        recordMany: async (rows) => {
          await generationStore.recordMany(rows);
          tokens?.written(rows);
        },
      },
      maxWaiting: config.usageQueueMax,
      costOf: (row) => costOf(config.modelPrices, row),
      onOutage: (reason) => logger.warn({ reason }, `usage records cannot be written to the database (${reason}); they wait in memory`),
      onRecovered: () => logger.info('usage records are written to the database again'),
    });
  if (usageRecorder) {
    operations.addReadinessCheck(() => usageRecorder.unavailableReason());
    operations.metrics?.watchUsageRecorder(() => usageRecorder.stats);
  }

  const conversationLimits = {
    maxMessages: config.conversationMaxMessages,
    maxCharacters: config.conversationMaxCharacters,
    retentionMs: config.conversationRetentionMs,
  };
  const conversations = createConversationStore(config.conversationStore, { shared, database, limits: conversationLimits, logger });
  const imageStore = new ImageStore({
    directory: join(config.dataDir, 'images'),
    maxBytes: config.imageDownloadMaxBytes,
    downloadTimeoutMs: config.imageDownloadTimeoutMs,
    ...(config.publicBaseUrl !== undefined && { publicBaseUrl: config.publicBaseUrl }),
    allowPrivateNetwork: config.security.allowPrivateNetworkDownloads,
  });
  const generations = new GenerationService({
    registry,
    eventLog: shared?.eventLog ?? new MemoryEventLog(),
    pubSub: shared?.pubSub ?? createGenerationPubSub(),
    ...(shared && { scaleOut: shared.scaleOut }),
    imageStore,
    conversations,
    conversationLimits,
    retentionMs: config.generationRetentionMs,
    maxRetained: config.generationRetentionMax,
    deltaCoalesceMs: config.deltaCoalesceMs,
    tokenLimits: {
      maxTokensLimit: config.maxTokensLimit,
      ...(config.defaultMaxTokens !== undefined && { defaultMaxTokens: config.defaultMaxTokens }),
    },
    generationTimeoutMs: config.generationTimeoutMs,
    // Past the retention, generation(id) and generations read the rows the usage recorder wrote.
    ...(generationStore && { history: generationStore }),
    observer: usageRecorder ? combineObservers(operations.observer, usageRecorder, tokens) : operations.observer,
    ...(tracing && { tracer: tracing.generations }),
    logger,
  });

  // API keys, per-caller limits, GraphQL armor/CSRF/introspection, body size limit: see security/security.ts.
  const security = createSecurity(config.security, {
    generations,
    usageReports: new UsageReports(database && new UsageStore(database.db)),
    graphqlPath: GRAPHQL_PATH,
    graphiql: config.graphiql,
    ...(shared && { rateLimitStore: shared.rateLimitStore }),
    logger,
    ...(virtualKeys && { virtualKeys }),
    virtualKeysExist,
    ...(tokens && { tokens }),
    defaultCompletionTokens: config.defaultMaxTokens ?? config.security.estimatedCompletionTokens,
  });
  for (const warning of security.warnings) logger.warn(warning);

  const yoga = createGraphQLServer({ context: { generations, registry, conversations }, security, operations, graphiql: config.graphiql });
  const server = createHttpServer({
    crossOrigin: createCrossOriginHandler(config.corsOrigins),
    operations,
    ...(tracing && { tracing }),
    security,
    routes: [
      (request, response) => imageStore.handle(request, response),
      createRestApi({
        generations,
        registry,
        logger,
        generationsFor: security.generationsFor,
        usageFor: security.usageFor,
        maxBodyBytes: config.security.maxRequestBodyBytes,
      }),
      createWebPage(),
    ],
    yoga,
  });
  const webSockets = attachGraphQLWebSocketServer({ server, yoga, security, operations, maxPayloadBytes: config.security.maxRequestBodyBytes });

  let stopping: Promise<void> | undefined;
  return {
    generations,
    registry,
    conversations,
    database,
    usageRecorder,

    async start() {
      await shared?.connect();
      await shared?.startRole(generations);
      const port = await listen(server, config.host, config.port);
      if (config.publicBaseUrl === undefined) imageStore.setPublicBaseUrl(`http://localhost:${port}`);
      // Background work (a default model's download) starts once the server answers, the probes included.
      await Promise.all(providers.map((provider) => provider.start?.()));
      operations.markStarted();
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return { port, url: `http://${host}:${port}` };
    },

    stop(stopOptions = {}) {
      stopping ??= (async () => {
        const graceMs = stopOptions.graceMs ?? 0;
        operations.beginShutdown();
        logger.info({ graceMs }, 'shutting down: no new generations; running ones may finish within the grace period');
        await generations.drain(graceMs);
        await shared?.closeQueue();
        // Every subscriber has its terminal event; let graphql-ws send each operation's `complete` (pure
        // promise work once the events ended) before the sockets close with 1001.
        await new Promise((resolve) => setImmediate(resolve));
        security.close();
        await webSockets.dispose();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        // Each provider stops its own work (a local model: until llama.cpp stopped evaluating) before it releases it.
        await Promise.all(providers.map((provider) => provider.close?.()));
        await conversations.close();
        await shared?.close();
        await usageRecorder?.close();
        await database?.close();
        await tracing?.shutdown(TRACE_EXPORT_TIMEOUT_MS);
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/** Longest wait for the last spans to reach the collector at shutdown, ms. */
const TRACE_EXPORT_TIMEOUT_MS = 2_000;

/**
 * The conversation store `CONVERSATION_STORE` names (the configuration has checked that what it
 * needs is there: a database for `database`, Redis for `redis`).
 */
function createConversationStore(
  kind: ConversationStoreKind,
  { shared, database, limits, logger }: { shared: { conversations: ConversationStore } | undefined; database: Database | undefined; limits: ConversationLimits; logger: Logger },
): ConversationStore {
  if (kind === 'redis' && shared) return shared.conversations;
  if (kind === 'database' && database) {
    return new DatabaseConversationStore(database.db, limits, {
      onSweepError: (error) => logger.warn({ err: error }, 'expired conversations could not be deleted from the database; the next sweep tries again'),
    });
  }
  return new MemoryConversationStore(limits);
}
