/**
 * A typed graphql-ws client of the gateway: `subscribe(document, variables)` takes a document that
 * GraphQL Code Generator made (a `TypedDocumentNode<Result, Variables>`) and yields results of its
 * `Result` type, so a wrong field or variable is a compile error.
 *
 * Protocol: GraphQL over WebSocket (`graphql-transport-ws`,
 * https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md). The gateway takes its API key
 * in the `connection_init` payload (`{ "authorization": "Bearer <key>" }`).
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import { createClient, type SubscribePayload } from 'graphql-ws';
import WebSocket from 'ws';

/** Where and how to reach the gateway. */
export interface GatewayClientOptions {
  /** The gateway's GraphQL WebSocket URL, e.g. `ws://127.0.0.1:1337/graphql`. */
  url: string;
  /** An API key of the gateway; absent when the gateway has authentication off. */
  apiKey?: string;
  /**
   * Send each operation's persisted document id (`documentId`, e.g. `sha256:5e82…`) instead of its
   * text: for a gateway that runs only listed operations (`PERSISTED_OPERATIONS_FILE` set to this
   * example's `src/gql/persisted-documents.json`). Default false.
   */
  sendDocumentIds?: boolean;
}

/** A connection to the gateway (opened at the first subscription, closed by `dispose`). */
export interface GatewayClient {
  /**
   * Runs a subscription and yields the `data` of each result as it arrives; ends when the server
   * completes the operation. Leaving the loop early (`break`, `return`, an exception) completes it
   * on the server, which cancels the generation.
   * @throws GatewayRequestError when the server answers with errors (e.g. `BAD_USER_INPUT`,
   *   `MODEL_NOT_FOUND`, `RATE_LIMITED`, `PERSISTED_QUERY_NOT_FOUND`) or closes the socket (e.g.
   *   4403 for a missing or wrong API key).
   */
  subscribe<Result, Variables extends Record<string, unknown>>(document: TypedDocumentNode<Result, Variables>, variables: Variables): AsyncGenerator<Result>;
  /** Closes the socket. */
  dispose(): Promise<void>;
}

/** The server refused an operation, or closed the connection. */
export class GatewayRequestError extends Error {
  override readonly name = 'GatewayRequestError';
  /** The `extensions.code` of each GraphQL error (e.g. `BAD_USER_INPUT`), or `WEBSOCKET_CLOSED_<code>` when the socket closed. */
  readonly codes: string[];

  constructor(message: string, codes: string[]) {
    super(message);
    this.codes = codes;
  }

  /** From the errors of a result (or of an `error` message). */
  static fromErrors(errors: readonly GraphQLFormattedError[]): GatewayRequestError {
    const codes = errors.map((error) => String(error.extensions?.code ?? 'UNKNOWN'));
    return new GatewayRequestError(errors.map((error, index) => `${codes[index]}: ${error.message}`).join('; '), codes);
  }
}

/** The persisted document id Code Generator embedded in a document (`persistedDocuments: true` in codegen.ts). */
function documentIdOf(document: DocumentNode): string {
  const id = (document as DocumentNode & { __meta__?: { hash?: unknown } }).__meta__?.hash;
  if (typeof id !== 'string') throw new Error('This document has no persisted id: generate the documents with persistedDocuments: true (codegen.ts).');
  return id;
}

/** Whether `value` is what graphql-ws rejects with when the socket closes (a `CloseEvent`). */
function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && 'code' in value && 'reason' in value;
}

/** Creates a client of the gateway at `options.url`; no socket opens until the first subscription. */
export function createGatewayClient(options: GatewayClientOptions): GatewayClient {
  const client = createClient({
    url: options.url,
    webSocketImpl: WebSocket,
    ...(options.apiKey !== undefined && { connectionParams: { authorization: `Bearer ${options.apiKey}` } }),
    // A generation is not repeated behind the caller's back: a lost connection fails the subscription.
    retryAttempts: 0,
  });

  return {
    async *subscribe<Result, Variables extends Record<string, unknown>>(document: TypedDocumentNode<Result, Variables>, variables: Variables) {
      // graphql-ws requires `query` to be a string: with a document id, the text is empty.
      const payload: SubscribePayload & { documentId?: string } = options.sendDocumentIds
        ? { query: '', documentId: documentIdOf(document), variables }
        : { query: print(document), variables };
      const results = client.iterate<Result>(payload);
      try {
        for await (const result of results) {
          if (result.errors?.length) throw GatewayRequestError.fromErrors(result.errors);
          if (result.data == null) throw new GatewayRequestError('A result without data.', ['NO_DATA']);
          yield result.data;
        }
      } catch (error) {
        // graphql-ws rejects with the errors of an `error` message, or with the CloseEvent of a closed socket.
        if (Array.isArray(error)) throw GatewayRequestError.fromErrors(error as GraphQLFormattedError[]);
        if (isCloseEvent(error)) throw new GatewayRequestError(`The gateway closed the connection: ${error.code} ${error.reason}`, [`WEBSOCKET_CLOSED_${error.code}`]);
        throw error;
      } finally {
        await results.return?.();
      }
    },
    dispose: async () => client.dispose(),
  };
}
