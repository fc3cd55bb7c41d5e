/**
 * Virtual keys end to end on the real app (PGlite in memory): the master key makes, lists, changes
 * and revokes keys through GraphQL; a key made so streams a chat over graphql-ws and REST (the
 * official `openai` client, gpt4free's header) as its own caller `key:<id>`; a wrong, expired or
 * revoked key gets UNAUTHORIZED everywhere; revoking or expiring a key closes its open graphql-ws
 * sockets with 4403; static API_KEYS keep working beside them; and without a database or a master
 * key the admin operations say why they cannot run.
 */
import OpenAI, { AuthenticationError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hashApiKey } from '../../src/security/api-keys.js';
import { GenerationStore } from '../../src/storage/generation-store.js';
import {
  createApiKey,
  graphqlWithKey,
  LIST_API_KEYS,
  openAcknowledgedSocket,
  REVOKE_API_KEY,
  UPDATE_API_KEY,
  type ApiKeyFields,
} from '../helpers/api-key-operations.js';
import { CHAT_COMPLETION_SUBSCRIPTION, type ChatEvent } from '../helpers/chat-operations.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { collectChatStream, postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const MASTER_KEY = 'master-key-0123456789abcdef';
const STATIC_KEY = 'static-key-0123456789';
const MODELS_QUERY = '{ models { id provider } }';
const STORY = { model: 'stories260K', messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 8 };

let started: StartedApp;

beforeAll(async () => {
  // A short cache time so that a key's expiry closes its sockets within a test (the sweep runs this often).
  started = await startApp({ MASTER_KEY, API_KEYS: STATIC_KEY, DATABASE_URL: 'memory://', API_KEY_CACHE_TTL_MS: '200' });
});

afterAll(async () => {
  await started?.stop();
});

const gql = <Data = any>(key: string | undefined, query: string, variables?: Record<string, unknown>) => graphqlWithKey<Data>(started.graphqlUrl, key, query, variables);
const create = (input: Record<string, unknown>) => createApiKey(started.graphqlUrl, MASTER_KEY, input);

describe('admin operations', () => {
  it('createApiKey returns the key once and stores only its SHA-256; apiKeys pages through keys without them', async () => {
    const first = await create({ name: 'first', limits: { requestsPerMinute: 10, budgetTokens: 1000, budgetPeriod: 'MONTH', allowedModels: ['stories260K'] } });
    const second = await create({ name: 'second', expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    expect(first.key).toMatch(/^sk-gw-[A-Za-z0-9_-]{43}$/);
    expect(first.apiKey).toMatchObject({
      id: expect.stringMatching(/^key_/),
      name: 'first',
      status: 'ACTIVE',
      keyPrefix: first.key.slice(0, 12),
      revokedAt: null,
      limits: { requestsPerMinute: 10, tokensPerMinute: null, budgetTokens: 1000, budgetPeriod: 'MONTH', allowedModels: ['stories260K'], allowedProviders: null },
    });
    const stored = await started.app.database!.db.query.apiKeys.findFirst({ where: (table, { eq }) => eq(table.id, first.apiKey.id) });
    expect(stored!.keyHash).toBe(hashApiKey(first.key));
    expect(JSON.stringify(stored)).not.toContain(first.key);

    const page = await gql(MASTER_KEY, LIST_API_KEYS, { first: 1 });
    expect(page.body.errors).toBeUndefined();
    expect(page.body.data.apiKeys.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([second.apiKey.id]);
    expect(page.body.data.apiKeys.pageInfo.hasNextPage).toBe(true);
    const next = await gql(MASTER_KEY, LIST_API_KEYS, { first: 1, after: page.body.data.apiKeys.pageInfo.endCursor });
    expect(next.body.data.apiKeys.nodes).toEqual([{ id: first.apiKey.id }]);
    expect((await gql(MASTER_KEY, LIST_API_KEYS, { first: 101 })).body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('updateApiKey sets and clears fields; bad input and unknown ids are refused with their codes', async () => {
    const { apiKey } = await create({ name: 'to change', limits: { tokensPerMinute: 100, budgetTokens: 50, budgetPeriod: 'DAY' } });
    const changed = await gql<{ updateApiKey: ApiKeyFields }>(MASTER_KEY, UPDATE_API_KEY, {
      id: apiKey.id,
      input: { name: 'changed', limits: { tokensPerMinute: null, allowedProviders: ['llama-cpp'] } },
    });
    expect(changed.body.errors).toBeUndefined();
    expect(changed.body.data!.updateApiKey).toMatchObject({ name: 'changed', limits: { tokensPerMinute: null, budgetTokens: 50, allowedProviders: ['llama-cpp'] } });

    const halfBudget = await gql(MASTER_KEY, UPDATE_API_KEY, { id: apiKey.id, input: { limits: { budgetPeriod: null } } });
    expect(halfBudget.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('budgetTokens'), extensions: { code: 'BAD_USER_INPUT' } });
    const badCreate = await gql(MASTER_KEY, `mutation { createApiKey(input: { name: "x", limits: { allowedModels: [] } }) { key } }`);
    expect(badCreate.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('allowedModels'), extensions: { code: 'BAD_USER_INPUT' } });
    const unknown = await gql(MASTER_KEY, REVOKE_API_KEY, { id: 'key_unknown' });
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('API_KEY_NOT_FOUND');
  });

  it('refuses every admin operation without the master key: FORBIDDEN with a key, UNAUTHORIZED without', async () => {
    const { key } = await create({ name: 'not an admin' });
    for (const callerKey of [STATIC_KEY, key]) {
      const { status, body } = await gql(callerKey, `mutation { createApiKey(input: { name: "sneaky" }) { key } }`);
      expect(status).toBe(403);
      expect(body.errors?.[0]).toMatchObject({ message: expect.stringContaining('master key'), extensions: { code: 'FORBIDDEN' } });
      expect((await gql(callerKey, LIST_API_KEYS)).body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    const anonymous = await gql(undefined, LIST_API_KEYS);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHORIZED');
  });
});

describe('a virtual key in use', () => {
  let key: string;
  let id: string;
  beforeAll(async () => {
    ({ key, apiKey: { id } } = await create({ name: 'client' }));
  });

  it('streams a chat over graphql-ws, owned by key:<id>', async () => {
    const client = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: `Bearer ${key}` } });
    try {
      const results = await collectWebSocket<{ chatCompletion: ChatEvent }>(client, CHAT_COMPLETION_SUBSCRIPTION, { input: STORY });
      const events = results.map((result) => result.data!.chatCompletion);
      expect(events.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted', finishReason: 'LENGTH', usage: { completionTokens: 8 } });
      await started.app.usageRecorder!.flush();
      const row = await new GenerationStore(started.app.database!.db).get(events[0]!.generationId);
      expect(row).toMatchObject({ owner: `key:${id}`, status: 'completed', completionTokens: 8 });
    } finally {
      await client.dispose();
    }
  });

  it('streams a chat over REST with the openai client, and authenticates with the g4f-api-key header', async () => {
    const openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: key, maxRetries: 0 });
    const stream = await openai.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8, stream: true });
    let text = '';
    let finishReason: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finishReason).toBe('length');

    const response = await postJson(started.url, '/v1/chat/completions', { model: 'stories260K', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream: true }, {
      headers: { 'content-type': 'application/json', 'g4f-api-key': key },
    });
    expect(response.status).toBe(200);
    expect((await collectChatStream(response)).done).toBe(true);
  });

  it('lists only its own generations', async () => {
    const others = await gql(STATIC_KEY, 'mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }', { input: STORY });
    const otherId: string = others.body.data.startChatCompletion.id;
    const { body } = await gql(key, '{ generations(first: 100) { nodes { id } } }');
    expect(body.errors).toBeUndefined();
    const ids: string[] = body.data.generations.nodes.map((node: { id: string }) => node.id);
    expect(ids).toHaveLength(3); // the graphql-ws chat and the two REST chats above
    expect(ids).not.toContain(otherId);
    await expect.poll(() => started.app.generations.get(otherId)?.status).not.toBe('running');
    await started.app.usageRecorder!.flush();
    const rows = await started.app.database!.db.query.generations.findMany();
    expect(rows.filter((row) => row.owner === `key:${id}`).map((row) => row.id).sort()).toEqual([...ids].sort());
  });

  it('static API_KEYS keep working beside virtual keys', async () => {
    const { status, body } = await gql(STATIC_KEY, MODELS_QUERY);
    expect(status).toBe(200);
    expect(body.data.models).toContainEqual({ id: 'stories260K', provider: 'llama-cpp' });
  });
});

describe('keys that are not valid', () => {
  /** The refusal of `key` over GraphQL on HTTP, REST (openai client) and graphql-ws. */
  async function refusals(key: string) {
    const graphql = await gql(key, MODELS_QUERY);
    const rest = await new OpenAI({ baseURL: `${started.url}/v1`, apiKey: key, maxRetries: 0 }).models.list().catch((error: unknown) => error);
    const socket = await openAcknowledgedSocket(started.webSocketUrl, key).then(
      () => undefined,
      (error: Error) => error.message,
    );
    return { graphql, rest, socket };
  }

  it('answers UNAUTHORIZED (401) for a wrong key everywhere', async () => {
    const { graphql, rest, socket } = await refusals('sk-gw-not-a-key-at-all-0000000000000000000000000');
    expect(graphql.status).toBe(401);
    expect(graphql.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(graphql.body.errors).toEqual([{ message: 'Unauthorized: the API key is not valid.', extensions: { code: 'UNAUTHORIZED' } }]);
    expect(rest).toBeInstanceOf(AuthenticationError);
    expect(rest).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(socket).toBe('closed 4403 Unauthorized: the API key is not valid.');
  });

  it('answers UNAUTHORIZED for an expired key and a revoked one, naming why', async () => {
    const expiring = await create({ name: 'expiring' });
    expect((await gql(expiring.key, MODELS_QUERY)).status).toBe(200);
    const past = new Date(Date.now() - 1000).toISOString();
    const expired = await gql<{ updateApiKey: ApiKeyFields }>(MASTER_KEY, UPDATE_API_KEY, { id: expiring.apiKey.id, input: { expiresAt: past } });
    expect(expired.body.data!.updateApiKey.status).toBe('EXPIRED');
    const afterExpiry = await refusals(expiring.key);
    expect(afterExpiry.graphql.status).toBe(401);
    expect(afterExpiry.graphql.body.errors?.[0]).toMatchObject({ message: `Unauthorized: the API key expired at ${past}.`, extensions: { code: 'UNAUTHORIZED' } });
    expect(afterExpiry.rest).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(afterExpiry.socket).toMatch(/^closed 4403 .*expired/);

    const revoking = await create({ name: 'revoking' });
    const revoked = await gql<{ revokeApiKey: ApiKeyFields }>(MASTER_KEY, REVOKE_API_KEY, { id: revoking.apiKey.id });
    expect(revoked.body.data!.revokeApiKey).toMatchObject({ status: 'REVOKED', revokedAt: expect.any(String) });
    const afterRevocation = await refusals(revoking.key);
    expect(afterRevocation.graphql.body.errors?.[0]).toMatchObject({ message: 'Unauthorized: the API key was revoked.', extensions: { code: 'UNAUTHORIZED' } });
    expect(afterRevocation.rest).toMatchObject({ status: 401 });
    expect(afterRevocation.socket).toBe('closed 4403 Unauthorized: the API key was revoked.');
    const again = await gql<{ revokeApiKey: ApiKeyFields }>(MASTER_KEY, REVOKE_API_KEY, { id: revoking.apiKey.id });
    expect(again.body.data!.revokeApiKey.revokedAt).toBe(revoked.body.data!.revokeApiKey.revokedAt);
  });
});

describe('open sockets of a key that stops being valid', () => {
  it('closes them with 4403 when the key is revoked, leaving other keys\' sockets open', async () => {
    const doomed = await create({ name: 'doomed' });
    const kept = await create({ name: 'kept' });
    const [first, second, other] = await Promise.all([
      openAcknowledgedSocket(started.webSocketUrl, doomed.key),
      openAcknowledgedSocket(started.webSocketUrl, doomed.key),
      openAcknowledgedSocket(started.webSocketUrl, kept.key),
    ]);
    const { body } = await gql(MASTER_KEY, REVOKE_API_KEY, { id: doomed.apiKey.id });
    expect(body.errors).toBeUndefined();
    expect(await first.closed).toEqual({ code: 4403, reason: 'Forbidden: the API key was revoked.' });
    expect(await second.closed).toEqual({ code: 4403, reason: 'Forbidden: the API key was revoked.' });
    expect(other.socket.readyState).toBe(WebSocket.OPEN);
    other.socket.close();
  });

  it('closes them with 4403 when the key expires', async () => {
    const expiresAt = new Date(Date.now() + 1500);
    const { key } = await create({ name: 'short-lived', expiresAt: expiresAt.toISOString() });
    const { closed } = await openAcknowledgedSocket(started.webSocketUrl, key);
    expect(await closed).toEqual({ code: 4403, reason: `Forbidden: the API key expired at ${expiresAt.toISOString()}.` });
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect((await gql(key, MODELS_QUERY)).status).toBe(401);
  });
});

describe('admin operations a server cannot run', () => {
  it('answers DATABASE_NOT_CONFIGURED without a database, and FORBIDDEN without a master key', async () => {
    const withoutDatabase = await startApp({ MASTER_KEY, DATABASE_URL: 'none' });
    try {
      const { status, body } = await graphqlWithKey(withoutDatabase.graphqlUrl, MASTER_KEY, `mutation { createApiKey(input: { name: "x" }) { key } }`);
      expect(status).toBe(501);
      expect(body.errors?.[0]).toMatchObject({ message: expect.stringContaining('Virtual keys need a database'), extensions: { code: 'DATABASE_NOT_CONFIGURED' } });
      expect((await graphqlWithKey(withoutDatabase.graphqlUrl, MASTER_KEY, LIST_API_KEYS)).body.errors?.[0]?.extensions?.code).toBe('DATABASE_NOT_CONFIGURED');
    } finally {
      await withoutDatabase.stop();
    }
    const withoutMaster = await startApp({ API_KEYS: STATIC_KEY });
    try {
      const { body } = await graphqlWithKey(withoutMaster.graphqlUrl, STATIC_KEY, LIST_API_KEYS);
      expect(body.errors?.[0]).toMatchObject({ message: expect.stringContaining('set MASTER_KEY'), extensions: { code: 'FORBIDDEN' } });
    } finally {
      await withoutMaster.stop();
    }
  });
});
