/**
 * The app factory: Yoga (GraphQL over HTTP and SSE, GraphiQL), graphql-ws on the same path,
 * `/healthz`, the generation service and the providers, all on one `node:http` server.
 * Only `main.ts` listens on the configured port; tests call `createApp(config).start()` with port 0.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { GraphQLError } from 'graphql';
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
import { ImageStore } from './images/image-store.js';
import { CircuitBreaker } from './providers/circuit-breaker.js';
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
  /** Cancels running generations, closes WebSockets (1001) and HTTP connections, and releases the providers. */
  stop(): Promise<void>;
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

/** Creates the gateway from a validated configuration. Nothing listens until `start()`. */
export function createApp(config: Config, options: { providers?: Provider[] } = {}): App {
  const providers = options.providers ?? createProviders(config);
  const registry = new ProviderRegistry(providers, {
    ...(config.defaultChatModel !== undefined && { defaultChatModel: config.defaultChatModel }),
    ...(config.defaultImageModel !== undefined && { defaultImageModel: config.defaultImageModel }),
    aliases: config.modelAliases,
    order: config.providerOrder,
    ...(config.breakerEnabled && {
      breaker: new CircuitBreaker({ failureThreshold: config.breakerFailureThreshold, cooldownMs: config.breakerCooldownMs }),
    }),
  });
  const conversationLimits = {
    maxMessages: config.conversationMaxMessages,
    maxCharacters: config.conversationMaxCharacters,
    retentionMs: config.conversationRetentionMs,
  };
  const conversations = new MemoryConversationStore(conversationLimits);
  const imageStore = new ImageStore({
    directory: join(config.dataDir, 'images'),
    maxBytes: config.imageDownloadMaxBytes,
    downloadTimeoutMs: config.imageDownloadTimeoutMs,
    ...(config.publicBaseUrl !== undefined && { publicBaseUrl: config.publicBaseUrl }),
  });
  const generations = new GenerationService({
    registry,
    eventLog: new MemoryEventLog(),
    pubSub: createGenerationPubSub(),
    imageStore,
    conversations,
    conversationLimits,
    retentionMs: config.generationRetentionMs,
    maxRetained: config.generationRetentionMax,
    deltaCoalesceMs: config.deltaCoalesceMs,
  });
  const context: GatewayContext = { generations, registry, conversations };

  const yoga: YogaServerInstance<{ req: IncomingMessage; res: ServerResponse }, GatewayContext> = createYoga({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    context: () => context,
    landingPage: false,
    // Errors that are not GraphQL errors (GatewayError is one) become "Unexpected error." and are logged.
    maskedErrors: true,
    graphiql: config.graphiql
      ? { title: 'GraphQL AI gateway', subscriptionsProtocol: 'WS', defaultQuery: GRAPHIQL_DEFAULT_QUERY }
      : false,
    renderGraphiQL,
  });

  /** Plain HTTP routes, tried in order before GraphQL (which answers 404 for anything else). */
  const routes: HttpRoute[] = [
    (request, response) => imageStore.handle(request, response),
    createRestApi({ generations, registry }),
    createWebPage(),
  ];
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.url === '/healthz' || request.url?.startsWith('/healthz?')) {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    for (const route of routes) {
      if (await route(request, response)) return;
    }
    await yoga(request, response);
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      console.error('[gateway] request failed:', error);
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"internal error"}}');
      else response.destroy();
    });
  });

  const webSocketServer = new WebSocketServer({ server, path: GRAPHQL_PATH });
  const webSockets = useServer(
    {
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
      // Runs every operation through Yoga's envelop, so plugins and error masking apply to WebSocket traffic too.
      onSubscribe: async (connection, _id, payload) => {
        const { schema: envelopedSchema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...connection,
          req: connection.extra.request,
          socket: connection.extra.socket,
          params: payload,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : createGraphQLError(String(error))];
        }
        const errors = validate(envelopedSchema, document);
        if (errors.length > 0) return errors;
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

    start() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const { port } = server.address() as AddressInfo;
          const host = config.host.includes(':') ? `[${config.host}]` : config.host;
          if (config.publicBaseUrl === undefined) imageStore.setPublicBaseUrl(`http://localhost:${port}`);
          resolve({ port, url: `http://${host}:${port}` });
        });
      });
    },

    stop() {
      stopping ??= (async () => {
        await generations.stop();
        await webSockets.dispose();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await Promise.all(providers.map((provider) => provider.close?.()));
        await conversations.close();
      })();
      return stopping;
    },
  };
}
