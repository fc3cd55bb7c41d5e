/**
 * The app factory: Yoga (GraphQL over HTTP and SSE, GraphiQL), graphql-ws on the same path,
 * `/healthz`, the generation service and the providers, all on one `node:http` server.
 * Only `main.ts` listens on the configured port; tests call `createApp(config).start()` with port 0.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createGraphQLError, createYoga, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Config } from './config.js';
import type { ConversationStore } from './conversations/conversation-store.js';
import type { HttpRoute } from './http-route.js';
import { MemoryEventLog } from './generations/event-log.js';
import { createGenerationPubSub } from './generations/generation-pub-sub.js';
import { GenerationService } from './generations/generation-service.js';
import { MemoryConversationStore } from './conversations/conversation-store.js';
import { RedisConversationStore } from './conversations/redis-conversation-store.js';
import { ImageStore } from './images/image-store.js';
import { CircuitBreaker, type ProviderCircuitBreaker } from './providers/circuit-breaker.js';
import { RedisCircuitBreaker } from './scale-out/redis-circuit-breaker.js';
import { createHuggingFaceSpaceProvider } from './providers/hf-space/hf-space-provider.js';
import { createLlamaCppProvider } from './providers/llama-cpp/llama-cpp-provider.js';
import { createOpenAICompatibleProvider } from './providers/openai-compatible/openai-compatible-provider.js';
import { createPollinationsProvider } from './providers/pollinations/pollinations-provider.js';
import type { Provider } from './providers/provider.js';
import { ProviderRegistry } from './providers/provider-registry.js';
import type { GatewayContext } from './schema/builder.js';
import { createRestApi } from './rest/rest-api.js';
import { schema } from './schema/index.js';
import { createWebPage } from './web/web-page.js';
import { createGraphiQLRenderer } from './web/graphiql-renderer.js';
import { batchWrites } from './transport/batched-writes.js';
import { createCrossOriginHandler } from './transport/cross-origin.js';
import { sendHttpRefusal } from './transport/http-refusal.js';
import { acknowledgeQueuedSends } from './transport/queued-sends.js';
import { limitUnacknowledgedSocket, UNACKNOWLEDGED_SOCKET_LIMIT_BYTES } from './transport/limit-unacknowledged-socket.js';
import { createSecurity } from './security/security.js';
import { withoutHttpExtension } from './security/partial-success-status.js';
import { RedisRateLimitStore } from './security/rate-limiter.js';
import { createOperations } from './operations/operations.js';
import { createLogger, type Logger } from './operations/logger.js';

/** The GraphQL endpoint path, for HTTP, SSE and WebSocket alike. */
export const GRAPHQL_PATH = '/graphql';

/** The operation GraphiQL opens with: a story streamed from the default model. */
const GRAPHIQL_DEFAULT_QUERY = `# Streams a story from the default model over graphql-ws.
subscription Story {
  chatCompletion(input: { messages: [{ role: USER, content: "Once upon a time" }], maxTokens: 200 }) {
    __typename
    ... on GenerationEvent { generationId sequence }
    ... on ChatCompletionStarted { provider model }
    ... on ChatTokenDelta { text }
    ... on ChatCompletionCompleted { finishReason text usage { promptTokens completionTokens totalTokens } }
    ... on GenerationFailed { error { code message provider } }
    ... on GenerationCancelled { reason }
  }
}
`;

/** A running (or startable) gateway. */
export interface App {
  /** Listens on `config.host:config.port` (port 0 = any free port). Resolves with the bound port and base URL. */
  start(): Promise<{ port: number; url: string }>;
  /**
   * Stops: refuses new generations and WebSocket connections at once (`/healthz` answers 503), lets
   * running generations finish for up to `graceMs` (default 0: cancel at once; `main.ts` passes
   * `SHUTDOWN_GRACE_MS`), cancels the rest (`GenerationCancelled`, reason `server shutting down`),
   * waits for subscribers to get their terminal events, closes WebSockets (1001) and HTTP
   * connections, and releases the providers. Later calls return the first call's promise.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  readonly generations: GenerationService;
  readonly registry: ProviderRegistry;
  readonly conversations: ConversationStore;
}

/**
 * Builds the providers named by the configuration, in priority order: `llama-cpp`, each
 * OpenAI-compatible upstream, `hf-space` (when it has spaces), `pollinations` (when enabled).
 */
export function createProviders(config: Config): Provider[] {
  const providers: Provider[] = [
    createLlamaCppProvider({
      modelsDir: config.modelsDir,
      threads: config.llamaThreads,
      contextSize: config.llamaContextSize,
      sequences: config.llamaSequences,
      gpu: config.llamaGpu,
    }),
    ...config.upstreams.map((upstream) => createOpenAICompatibleProvider(upstream)),
  ];
  if (config.huggingFaceSpaces.length > 0) {
    providers.push(
      createHuggingFaceSpaceProvider({
        spaces: config.huggingFaceSpaces,
        ...(config.huggingFaceToken !== undefined && { token: config.huggingFaceToken }),
        timeoutMs: config.huggingFaceSpaceTimeoutMs,
        maxReads: config.huggingFaceSpaceMaxReads,
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
      }),
    );
  }
  if (config.pollinations) {
    providers.push(
      createPollinationsProvider({
        ...config.pollinations,
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
        idleTimeoutMs: config.upstreamIdleTimeoutMs,
        downloadTimeoutMs: config.imageDownloadTimeoutMs,
        maxImageBytes: config.imageDownloadMaxBytes,
      }),
    );
  }
  return providers;
}

/**
 * Creates the gateway from a validated configuration. Nothing listens until `start()`. The Redis
 * clients (and BullMQ, for roles `api`/`worker`) are loaded only when `REDIS_URL` is set: a single
 * instance does not carry them (about 30 MB resident).
 */
export async function createApp(config: Config, options: { providers?: Provider[]; logger?: Logger } = {}): Promise<App> {
  const providers = options.providers ?? createProviders(config);
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const redis = config.redisUrl
    ? (await import('./scale-out/redis-state.js')).createRedisState(config.redisUrl, config.generationRetentionMs)
    : undefined;
  const breakerOptions = { failureThreshold: config.breakerFailureThreshold, cooldownMs: config.breakerCooldownMs };
  // With Redis the circuits are shared by every instance (falling back to this instance's view while Redis is unreachable).
  const breaker: ProviderCircuitBreaker | undefined = !config.breakerEnabled
    ? undefined
    : redis
      ? new RedisCircuitBreaker(redis.commands, { ...breakerOptions, logger })
      : new CircuitBreaker(breakerOptions);
  const registry = new ProviderRegistry(providers, {
    ...(config.defaultChatModel !== undefined && { defaultChatModel: config.defaultChatModel }),
    ...(config.defaultImageModel !== undefined && { defaultImageModel: config.defaultImageModel }),
    aliases: config.modelAliases,
    defaultAliases: config.defaultModelAliases,
    order: config.providerOrder,
    ...(breaker && { breaker }),
  });
  const operations = createOperations({ config, registry, logger });
  // /healthz answers 503 "degraded" with the reason while Redis is unreachable (ioredis reconnects by itself).
  if (redis) operations.addHealthCheck(() => redis.unavailableReason());
  const conversationLimits = {
    maxMessages: config.conversationMaxMessages,
    maxCharacters: config.conversationMaxCharacters,
    retentionMs: config.conversationRetentionMs,
  };
  const imageStore = new ImageStore({
    directory: join(config.dataDir, 'images'),
    maxBytes: config.imageDownloadMaxBytes,
    downloadTimeoutMs: config.imageDownloadTimeoutMs,
    ...(config.publicBaseUrl !== undefined && { publicBaseUrl: config.publicBaseUrl }),
    allowPrivateNetwork: config.security.allowPrivateNetworkDownloads,
  });
  const conversations: ConversationStore = redis
    ? new RedisConversationStore(redis.commands, conversationLimits)
    : new MemoryConversationStore(conversationLimits);
  // Roles `api` and `worker` share a BullMQ queue per provider (config requires REDIS_URL for them).
  const queue =
    redis && config.redisUrl && config.role !== 'all'
      ? new (await import('./scale-out/generation-queue.js')).GenerationQueue({
          redisUrl: config.redisUrl,
          prefix: config.queuePrefix,
          providerIds: providers.map((provider) => provider.id),
          lockMs: config.workerLockMs,
          concurrency: (providerId) => config.workerConcurrencyByProvider[providerId] ?? config.workerConcurrency,
          onError: (error) => operations.logger.warn({ err: error }, 'generation queue: Redis error'),
        })
      : undefined;
  const scaleOut =
    redis &&
    new (await import('./scale-out/redis-scale-out.js')).RedisScaleOut({
      sharedRecords: redis.sharedRecords,
      eventLog: redis.eventLog,
      pubSub: redis.pubSub,
      // Generations run here (not queued ones) hold an owner lease, so others can end them (INSTANCE_LOST) if this instance dies.
      leases: new (await import('./scale-out/generation-leases.js')).GenerationLeases(redis.commands, { leaseMs: config.generationLeaseMs, logger: operations.logger }),
      recheckIntervalMs: config.subscriptionRecheckMs,
      ...(queue && config.role === 'api' && { queue }),
      logger: operations.logger,
    });
  const generations = new GenerationService({
    registry,
    eventLog: redis?.eventLog ?? new MemoryEventLog(),
    pubSub: redis?.pubSub ?? createGenerationPubSub(),
    ...(scaleOut && { scaleOut }),
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
    observer: operations.observer,
    logger: operations.logger,
  });
  const context: GatewayContext = { generations, registry, conversations };
  // API keys, per-key limits, GraphQL armor/CSRF/introspection, body size limit: see src/security/security.ts.
  const security = createSecurity(config.security, {
    generations,
    graphqlPath: GRAPHQL_PATH,
    graphiql: config.graphiql,
    // With Redis every instance counts against one budget per caller.
    ...(redis && { rateLimitStore: new RedisRateLimitStore(redis.commands) }),
    logger: operations.logger,
  });
  for (const warning of security.warnings) operations.logger.warn(warning);

  const yoga: YogaServerInstance<{ req: IncomingMessage; res: ServerResponse }, GatewayContext> = createYoga({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    // Each request's resolvers see the generation service through the caller's limits.
    context: ({ req }) => ({ ...context, generations: security.generationsFor(req) }),
    plugins: security.plugins,
    landingPage: false,
    // CORS is answered for every route in one place (CORS_ORIGINS, src/transport/cross-origin.ts); Yoga's own
    // default would allow any origin, with credentials.
    cors: false,
    // The body limit is ours (MAX_REQUEST_BODY_BYTES, 413 REQUEST_TOO_LARGE): every GraphQL POST is read
    // and checked before Yoga sees it (security.ts). Yoga's own limit would pipe each body through a
    // TransformStream, whose stream pipeline keeps the request's objects through young-generation
    // collections: 37 → 27 kB copied per SSE subscription (README, Performance).
    maxRequestBodySize: false,
    // Errors that are not GraphQL errors (GatewayError is one) become "Unexpected error." and are logged.
    maskedErrors: true,
    graphiql: config.graphiql
      ? { title: 'GraphQL AI gateway', subscriptionsProtocol: 'WS', defaultQuery: GRAPHIQL_DEFAULT_QUERY }
      : false,
    // Loaded on the first GraphiQL request and rendered once (src/web/graphiql-renderer.ts).
    renderGraphiQL: createGraphiQLRenderer(),
    logging: operations.yogaLogger,
  });

  /** Plain HTTP routes, tried in order before GraphQL (which answers 404 for anything else). */
  const routes: HttpRoute[] = [
    (request, response) => imageStore.handle(request, response),
    createRestApi({
      generations,
      registry,
      logger: operations.logger,
      generationsFor: security.generationsFor,
      maxBodyBytes: config.security.maxRequestBodyBytes,
    }),
    createWebPage(),
  ];
  const crossOrigin = createCrossOriginHandler(config.corsOrigins);
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (await crossOrigin(request, response)) return; // a CORS preflight from an allowed origin (CORS_ORIGINS)
    if (await operations.route(request, response)) return; // /healthz, /metrics
    const refusal = await security.admitHttp(request); // no or wrong API key, a GraphQL body too large
    if (refusal) return sendHttpRefusal(request, response, refusal);
    for (const route of routes) {
      if (await route(request, response)) return;
    }
    await yoga(request, response);
  };
  const server = createServer((request, response) => {
    operations.track(request, response, () => handle(request, response)).catch((error: unknown) => {
      operations.logger.error({ err: error, requestId: response.getHeader('x-request-id'), method: request.method }, 'request failed');
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"internal error"}}');
      else response.destroy();
    });
  });

  // What a connection sends in one loop turn (SSE events, WebSocket messages) leaves in one write (see batched-writes.ts).
  server.on('connection', batchWrites);
  // A frame over MAX_REQUEST_BODY_BYTES closes its socket with 1009 (ws's own default would be 100 MiB).
  const webSocketServer = new WebSocketServer({
    server,
    path: GRAPHQL_PATH,
    verifyClient: operations.verifyWebSocketClient,
    maxPayload: config.security.maxRequestBodyBytes,
  });
  // Registered before useServer's listener: graphql-ws then sends a subscription's ready messages in one turn (see queued-sends.ts).
  webSocketServer.on('connection', (socket) => acknowledgeQueuedSends(socket));
  // Until graphql-ws acknowledges a socket (key accepted) it may send 64 KiB (or the body limit); refused, it is dropped (limit-unacknowledged-socket.ts).
  const unacknowledgedLimitBytes = Math.min(UNACKNOWLEDGED_SOCKET_LIMIT_BYTES, config.security.maxRequestBodyBytes);
  webSocketServer.on('connection', (socket, request) => limitUnacknowledgedSocket(socket, request, unacknowledgedLimitBytes));
  const webSockets = useServer(
    {
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
      // The API key arrives in connection_init: a missing or wrong key closes the socket with 4403.
      onConnect: (connection) => security.onWebSocketConnect(connection),
      onNext: (_connection, _id, _payload, _args, result) => security.formatWebSocketResult(result as ExecutionResult),
      // Runs every operation through Yoga's envelop, so plugins and error masking apply to WebSocket traffic too.
      onSubscribe: async (connection, _id, payload) => {
        // The operation's initial context: what plugins and resolvers read, not the whole connection
        // (each open subscription keeps its context).
        const { schema: envelopedSchema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          connectionParams: connection.connectionParams,
          req: connection.extra.request,
          socket: connection.extra.socket,
          params: payload,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error instanceof GraphQLError ? withoutHttpExtension(error) : createGraphQLError(String(error))];
        }
        // Validation errors carry Yoga's `http` extension (status 400), which means nothing on a WebSocket.
        const errors = validate(envelopedSchema, document);
        if (errors.length > 0) return errors.map(withoutHttpExtension);
        return {
          schema: envelopedSchema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
    },
    webSocketServer,
  );

  let stopping: Promise<void> | undefined;

  return {
    generations,
    registry,
    conversations,

    async start() {
      await redis?.connect();
      if (queue) {
        // Both roles end generations whose job failed (a dead worker's job, moved to failed by the stalled check).
        await queue.watchLostJobs((generationId, reason) => {
          generations.markLost(generationId, reason).catch((error: unknown) => {
            operations.logger.error({ err: error, generationId }, 'cannot end a generation whose worker was lost');
          });
        });
        if (config.role === 'worker') await queue.startWorkers((data) => generations.runJob(data));
      }
      return new Promise((resolve, reject) => {
        // ws relays the HTTP server's 'error' events to the WebSocket server, where graphql-ws prints
        // them with their stack: a failed listen (EADDRINUSE) is this promise's rejection alone.
        const relays = server.rawListeners('error') as Array<(error: Error) => void>;
        server.removeAllListeners('error');
        const restoreRelays = (): void => {
          for (const relay of relays) server.on('error', relay);
        };
        const failed = (error: Error): void => {
          restoreRelays();
          reject(error);
        };
        server.once('error', failed);
        server.listen(config.port, config.host, () => {
          server.off('error', failed);
          restoreRelays();
          const { port } = server.address() as AddressInfo;
          const host = config.host.includes(':') ? `[${config.host}]` : config.host;
          if (config.publicBaseUrl === undefined) imageStore.setPublicBaseUrl(`http://localhost:${port}`);
          resolve({ port, url: `http://${host}:${port}` });
        });
      });
    },

    stop(stopOptions = {}) {
      stopping ??= (async () => {
        const graceMs = stopOptions.graceMs ?? 0;
        operations.beginShutdown();
        operations.logger.info({ graceMs }, 'shutting down: no new generations; running ones may finish within the grace period');
        await generations.drain(graceMs);
        await queue?.close();
        // Every subscriber has its terminal event; let graphql-ws send each operation's `complete` (pure
        // promise work once the events ended) before the sockets close with 1001.
        await new Promise((resolve) => setImmediate(resolve));
        await webSockets.dispose();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await Promise.all(providers.map((provider) => provider.close?.()));
        await conversations.close();
        await redis?.close();
        operations.logger.info('stopped');
      })();
      return stopping;
    },
  };
}
