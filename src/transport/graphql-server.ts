/**
 * GraphQL over HTTP and SSE (graphql-yoga), with GraphiQL: the schema, the security plugins, and
 * each request's context (the generations as its caller may use them).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Operations } from '../operations/operations.js';
import type { GatewayContext } from '../schema/builder.js';
import { schema } from '../schema/index.js';
import { DOCUMENT_ID_PARAMETER } from '../security/persisted-operations.js';
import type { Security } from '../security/security.js';
import { createGraphiQLRenderer } from '../web/graphiql-renderer.js';

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

/** Yoga on Node's HTTP request and response. */
export type GraphQLServer = YogaServerInstance<{ req: IncomingMessage; res: ServerResponse }, GatewayContext>;

/** What the GraphQL server is made of. */
export interface GraphQLServerOptions {
  /** The context every request starts from; `generations` is replaced by the caller's view, and the caller's `usage` and `apiKeys` added. */
  context: Omit<GatewayContext, 'usage' | 'apiKeys'>;
  security: Security;
  operations: Pick<Operations, 'yogaLogger'>;
  /** Serve GraphiQL to browsers at {@link GRAPHQL_PATH}. */
  graphiql: boolean;
}

/** Creates the Yoga server (it listens through the HTTP router, never on its own). */
export function createGraphQLServer({ context, security, operations, graphiql }: GraphQLServerOptions): GraphQLServer {
  return createYoga({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    // Each request's resolvers see the generations through the caller's limits, usage as the caller may read it, and the admin operations the caller may use.
    context: ({ req }) => ({ ...context, generations: security.generationsFor(req), usage: security.usageFor(req), apiKeys: security.apiKeysFor(req) }),
    plugins: security.plugins,
    // With persisted operations, a request may name its operation by `documentId` instead of sending its text.
    ...(security.persistedOperations && { extraParamNames: [DOCUMENT_ID_PARAMETER] }),
    landingPage: false,
    // CORS is answered for every route in one place (CORS_ORIGINS, cross-origin.ts); Yoga's own default
    // would allow any origin, with credentials.
    cors: false,
    // The body limit is ours (MAX_REQUEST_BODY_BYTES, 413 REQUEST_TOO_LARGE): every GraphQL POST is read
    // and checked before Yoga sees it (security.ts). Yoga's own limit would pipe each body through a
    // TransformStream, whose stream pipeline keeps the request's objects through young-generation
    // collections (docs/performance.md).
    maxRequestBodySize: false,
    // Errors that are not GraphQL errors (GatewayError is one) become "Unexpected error." and are logged.
    maskedErrors: true,
    graphiql: graphiql ? { title: 'GraphQL AI gateway', subscriptionsProtocol: 'WS', defaultQuery: GRAPHIQL_DEFAULT_QUERY } : false,
    // Loaded on the first GraphiQL request and rendered once (web/graphiql-renderer.ts).
    renderGraphiQL: createGraphiQLRenderer(),
    logging: operations.yogaLogger,
  });
}
