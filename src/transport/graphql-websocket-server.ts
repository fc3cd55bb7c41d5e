/**
 * graphql-ws on the GraphQL path (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md):
 * every operation runs through Yoga's envelop, so the security plugins and error masking apply to
 * WebSocket traffic as to HTTP, and the API key is checked at `connection_init`. Frames are bounded
 * by the request-body limit, and a socket not yet acknowledged by a smaller budget
 * (limit-unacknowledged-socket.ts). With persisted operations, a Subscribe message names a listed
 * operation (`documentId` or `extensions.persistedQuery`, `query: ""`) instead of sending its text:
 * Yoga's plugin for them works in a hook graphql-ws messages never pass (security/persisted-operations.ts).
 */
import type { Server } from 'node:http';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createGraphQLError } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Operations } from '../operations/operations.js';
import { withoutHttpExtension } from '../security/partial-success-status.js';
import type { Security } from '../security/security.js';
import { GRAPHQL_PATH, type GraphQLServer } from './graphql-server.js';
import { limitUnacknowledgedSocket, UNACKNOWLEDGED_SOCKET_LIMIT_BYTES } from './limit-unacknowledged-socket.js';
import { acknowledgeQueuedSends } from './queued-sends.js';

/** What the WebSocket side needs. */
export interface GraphQLWebSocketServerOptions {
  /** The HTTP server whose upgrade requests to {@link GRAPHQL_PATH} become WebSockets. */
  server: Server;
  yoga: GraphQLServer;
  security: Security;
  operations: Pick<Operations, 'verifyWebSocketClient'>;
  /** Largest frame, bytes (`MAX_REQUEST_BODY_BYTES`); a larger one closes its socket with 1009. */
  maxPayloadBytes: number;
}

/** The running graphql-ws server. */
export interface GraphQLWebSocketServer {
  /** Closes every socket with 1001 (Going Away) and stops accepting new ones. */
  dispose(): void | Promise<void>;
}

/** Attaches graphql-ws to `server`. */
export function attachGraphQLWebSocketServer({ server, yoga, security, operations, maxPayloadBytes }: GraphQLWebSocketServerOptions): GraphQLWebSocketServer {
  const webSocketServer = new WebSocketServer({ server, path: GRAPHQL_PATH, verifyClient: operations.verifyWebSocketClient, maxPayload: maxPayloadBytes });
  // Registered before useServer's listener: graphql-ws then sends a subscription's ready messages in one turn (queued-sends.ts).
  webSocketServer.on('connection', (socket) => acknowledgeQueuedSends(socket));
  // Until graphql-ws acknowledges a socket (key accepted) it may send 64 KiB (or the body limit); refused, it is dropped.
  const unacknowledgedLimitBytes = Math.min(UNACKNOWLEDGED_SOCKET_LIMIT_BYTES, maxPayloadBytes);
  webSocketServer.on('connection', (socket, request) => limitUnacknowledgedSocket(socket, request, unacknowledgedLimitBytes));
  return useServer(
    {
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
      // The API key arrives in connection_init: a missing or wrong key closes the socket with 4403.
      onConnect: (connection) => security.onWebSocketConnect(connection),
      onNext: (_connection, _id, _payload, _args, result) => security.formatWebSocketResult(result as ExecutionResult),
      onSubscribe: async (connection, _id, payload) => {
        // The operation's initial context: what plugins and resolvers read, not the whole connection
        // (each open subscription keeps its context).
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          connectionParams: connection.connectionParams,
          req: connection.extra.request,
          socket: connection.extra.socket,
          params: payload,
        });
        let document;
        try {
          // With persisted operations, the payload names a listed operation instead of sending its text.
          document = parse(security.persistedOperations ? security.persistedOperations.operationFor(payload) : payload.query);
        } catch (error) {
          return [error instanceof GraphQLError ? withoutHttpExtension(error) : createGraphQLError(String(error))];
        }
        // Validation errors carry Yoga's `http` extension (status 400), which means nothing on a WebSocket.
        const errors = validate(schema, document);
        if (errors.length > 0) return errors.map(withoutHttpExtension);
        return {
          schema,
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
}
