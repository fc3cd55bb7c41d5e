/** The admin operations on virtual keys as the tests send them, over GraphQL on HTTP, with a key in `Authorization`. */
import WebSocket from 'ws';
import type { GraphQLResponse } from './graphql-clients.js';

/** Fields of `ApiKey` the tests read. */
export const API_KEY_FIELDS = `id name keyPrefix status createdAt updatedAt expiresAt revokedAt
  limits { requestsPerMinute tokensPerMinute maxConcurrentGenerations budgetTokens budgetPeriod allowedModels allowedProviders }`;

export const CREATE_API_KEY = `mutation Create($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { ${API_KEY_FIELDS} } } }`;
export const UPDATE_API_KEY = `mutation Update($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) { ${API_KEY_FIELDS} } }`;
export const REVOKE_API_KEY = `mutation Revoke($id: ID!) { revokeApiKey(id: $id) { ${API_KEY_FIELDS} } }`;
export const LIST_API_KEYS = `query Keys($first: Int, $after: String) {
  apiKeys(first: $first, after: $after) { edges { cursor node { id name status } } nodes { id } pageInfo { hasNextPage endCursor } }
}`;

/** An `ApiKey` as {@link API_KEY_FIELDS} selects it. */
export interface ApiKeyFields {
  id: string;
  name: string;
  keyPrefix: string;
  status: 'ACTIVE' | 'EXPIRED' | 'REVOKED';
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  limits: Record<string, unknown>;
}

/** POSTs a GraphQL operation with `Authorization: Bearer <key>` (none when `key` is undefined); the status, headers and body. */
export async function graphqlWithKey<Data = any>(graphqlUrl: string, key: string | undefined, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(key !== undefined && { authorization: `Bearer ${key}` }),
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse<Data> };
}

/**
 * Creates a virtual key with the master key.
 * @throws Error with the errors when it is refused.
 */
export async function createApiKey(graphqlUrl: string, masterKey: string, input: Record<string, unknown>): Promise<{ key: string; apiKey: ApiKeyFields }> {
  const { body } = await graphqlWithKey<{ createApiKey: { key: string; apiKey: ApiKeyFields } }>(graphqlUrl, masterKey, CREATE_API_KEY, { input });
  if (!body.data?.createApiKey) throw new Error(`createApiKey failed: ${JSON.stringify(body.errors)}`);
  return body.data.createApiKey;
}

/**
 * Opens a raw graphql-transport-ws socket and sends `connection_init` with `Bearer <key>`. Resolves
 * once the server acknowledged it (with the open socket and a promise of its close), or rejects
 * with the close code and reason when it refused.
 */
export function openAcknowledgedSocket(webSocketUrl: string, key: string): Promise<{ socket: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(webSocketUrl, 'graphql-transport-ws');
    const closed = new Promise<{ code: number; reason: string }>((resolveClose) =>
      socket.on('close', (code, reason) => resolveClose({ code, reason: reason.toString() })),
    );
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } })));
    socket.once('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string };
      if (message.type === 'connection_ack') resolve({ socket, closed });
      else reject(new Error(`unexpected first message ${String(data)}`));
    });
    socket.on('error', reject);
    void closed.then(({ code, reason }) => reject(new Error(`closed ${code} ${reason}`)));
  });
}
