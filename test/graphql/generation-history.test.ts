/**
 * Durable history through the GraphQL API, on both drivers: past its retention (here
 * `GENERATION_RETENTION_MAX=1`, so each generation that ends pushes the one before out of memory)
 * `generation(id)` is read from the database exactly as it was shown while retained — text,
 * reasoning, tool calls, usage, error, images without the bytes of B64_JSON ones — `generations`
 * pages through memory and database as one list, a caller sees only its own, and an expired
 * generation's events end with `EVENTS_EXPIRED`. With PostgreSQL cut off, reads say
 * `DATABASE_UNAVAILABLE`. The provider is the fake OpenAI-compatible upstream.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, type GraphQLResponse } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { createPostgresDatabase, TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

const KEYS = { alice: 'alice-key-0123456789', bob: 'bob-key-0123456789' };

const GENERATION = `query($id: ID!) {
  generation(id: $id) {
    __typename id status model provider createdAt finishedAt
    ... on ChatGeneration {
      text reasoning finishReason conversationId
      toolCalls { id name arguments }
      usage { promptTokens completionTokens totalTokens }
      error { code message provider }
    }
    ... on ImageGeneration { prompt images { url b64Json mimeType width height } error { code message } }
  }
}`;

const GENERATIONS = `query($first: Int, $after: String, $status: GenerationStatus, $kind: GenerationKind) {
  generations(first: $first, after: $after, status: $status, kind: $kind) {
    edges { cursor node { id status } }
    pageInfo { hasNextPage endCursor }
  }
}`;

/** POSTs a GraphQL operation as the key's holder (no key: none sent). */
async function graphql<Data = any>(started: StartedApp, key: string, query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<Data>> {
  const response = await fetch(started.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<Data>;
}

/** A non-streamed REST chat as the key's holder; resolves with the generation id once it ended. */
async function chat(started: StartedApp, key: string, body: Record<string, unknown>): Promise<string> {
  const response = await postJson(started.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Tell me a story' }], ...body }, { headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } });
  const json = (await response.json()) as { id?: string; error?: { code: string } };
  const id = json.id?.replace(/^chatcmpl-/, '');
  if (id) return id;
  // A failed generation answers with an error body and no id: find it as the newest generation.
  const listed = await graphql(started, key, GENERATIONS, { first: 1 });
  return listed.data.generations.edges[0].node.id as string;
}

describe.each(TEST_DATABASES)('$driver', ({ create }) => {
  let test: TestDatabase;
  let upstream: FakeOpenAIUpstream;
  let started: StartedApp;
  let client: Client;
  beforeAll(async () => {
    test = await create();
    upstream = await startFakeOpenAIUpstream({
      scenarios: {
        weather: { type: 'tool-calls', callCount: 2, pieceSize: 4 },
        reasoner: { type: 'reasoning', reasoningCount: 3, tokenCount: 4 },
      },
    });
    started = await startApp({
      DATABASE_URL: test.url,
      API_KEYS: `${KEYS.alice},${KEYS.bob}`,
      GENERATION_RETENTION_MAX: '1',
      BREAKER_ENABLED: 'false',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
        { id: 'fake', baseURL: upstream.baseURL, models: ['weather', 'reasoner', 'stream?tokens=3', 'server-error'], imageModels: ['fake-image'] },
      ]),
    });
    client = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: `Bearer ${KEYS.alice}` } });
  });
  afterAll(async () => {
    await client?.dispose();
    await started?.stop();
    await upstream?.close();
    await test?.drop();
  });

  /** Runs one more generation, so that `id` is pushed out of memory, and waits for the rows. */
  async function expire(id: string): Promise<void> {
    await chat(started, KEYS.bob, { model: 'stream?tokens=3' });
    await started.app.usageRecorder!.flush();
    expect(started.app.generations.get(id)).toBeUndefined();
  }

  it('shows an expired chat as it was while retained: text, reasoning, tool calls, usage, error', async () => {
    const ids = [
      await chat(started, KEYS.alice, { model: 'reasoner', conversation_id: 'history-1' }),
      await chat(started, KEYS.alice, { model: 'weather', tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }] }),
      await chat(started, KEYS.alice, { model: 'server-error' }),
    ];
    for (const id of ids) {
      const retained = await graphql(started, KEYS.alice, GENERATION, { id });
      expect(retained.errors).toBeUndefined();
      expect(retained.data.generation).toMatchObject({ id, __typename: 'ChatGeneration' });
      await expire(id);
      const stored = await graphql(started, KEYS.alice, GENERATION, { id });
      expect(stored).toEqual(retained);
    }
    const [reasoned, called, failed] = await Promise.all(ids.map(async (id) => (await graphql(started, KEYS.alice, GENERATION, { id })).data.generation));
    expect(reasoned).toMatchObject({ status: 'COMPLETED', conversationId: 'history-1', finishReason: 'STOP', text: expect.stringMatching(/\S/), reasoning: expect.stringMatching(/\S/) });
    expect(reasoned.usage).toMatchObject({ completionTokens: expect.any(Number) });
    expect(called).toMatchObject({ finishReason: 'TOOL_CALLS', toolCalls: [expect.objectContaining({ name: expect.any(String) }), expect.anything()] });
    expect(failed).toMatchObject({ status: 'FAILED', error: { code: 'UPSTREAM_ERROR', provider: 'fake' } });
  });

  it('keeps an expired image generation without the bytes of an inline image', async () => {
    const response = await postJson(started.url, '/v1/images/generations', { model: 'fake-image', prompt: 'a lighthouse', size: '64x64', response_format: 'b64_json' }, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.alice}` },
    });
    expect(response.status).toBe(200);
    const listed = await graphql(started, KEYS.alice, GENERATIONS, { first: 1, kind: 'IMAGE' });
    const id = listed.data.generations.edges[0].node.id as string;
    const retained = (await graphql(started, KEYS.alice, GENERATION, { id })).data.generation;
    expect(retained.images[0].b64Json).toEqual(expect.any(String));
    await expire(id);
    const stored = (await graphql(started, KEYS.alice, GENERATION, { id })).data.generation;
    expect(stored).toEqual({ ...retained, images: [{ ...retained.images[0], b64Json: null }] });
    expect(stored).toMatchObject({ __typename: 'ImageGeneration', status: 'COMPLETED', prompt: 'a lighthouse', images: [{ mimeType: 'image/png', url: null, b64Json: null }] });
  });

  it('pages through retained and stored generations as one list, newest first, the caller\'s own only', async () => {
    const ownIds: string[] = [];
    for (let index = 0; index < 3; index += 1) ownIds.push(await chat(started, KEYS.alice, { model: 'stream?tokens=3' }));
    await started.app.usageRecorder!.flush();

    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 20; page += 1) {
      const result = await graphql(started, KEYS.alice, GENERATIONS, { first: 2, ...(after && { after }) });
      expect(result.errors).toBeUndefined();
      const { edges, pageInfo } = result.data.generations;
      seen.push(...edges.map((edge: { node: { id: string } }) => edge.node.id));
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }
    // Alice's: the three above (newest first), the image and the three chats of the tests before; none of Bob's.
    expect(seen.slice(0, 3)).toEqual([...ownIds].reverse());
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
    const bobs = await graphql(started, KEYS.bob, GENERATIONS, { first: 100 });
    expect(bobs.data.generations.edges.every((edge: { node: { id: string } }) => !seen.includes(edge.node.id))).toBe(true);
    expect(bobs.data.generations.edges).toHaveLength(4); // the generations that pushed Alice's out of memory

    const failed = await graphql(started, KEYS.alice, GENERATIONS, { first: 10, status: 'FAILED' });
    expect(failed.data.generations.edges.map((edge: { node: { status: string } }) => edge.node.status)).toEqual(['FAILED']);
    const images = await graphql(started, KEYS.alice, GENERATIONS, { first: 10, kind: 'IMAGE' });
    expect(images.data.generations.edges).toHaveLength(1);
  });

  it("ends the events of an expired generation with EVENTS_EXPIRED, and cancelling it changes nothing", async () => {
    const id = await chat(started, KEYS.alice, { model: 'stream?tokens=3' });
    await expire(id);
    const results = await collectWebSocket(client, 'subscription($id: ID!) { chatCompletionEvents(generationId: $id) { __typename } }', { id }).catch((error: unknown) => [
      { errors: error as GraphQLResponse['errors'] },
    ]);
    expect(results).toHaveLength(1);
    expect(results[0]!.errors![0]!.extensions?.code).toBe('EVENTS_EXPIRED');
    expect(results[0]!.errors![0]!.message).toMatch(new RegExp(`^Events 1 to \\d+ of generation "${id}" are no longer in the event log`));
    const cancelled = await graphql(started, KEYS.alice, 'mutation($id: ID!) { cancelGeneration(id: $id) { status } }', { id });
    expect(cancelled.data).toEqual({ cancelGeneration: { status: 'COMPLETED' } });
  });
});

describe('PostgreSQL unreachable', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let proxy: TcpProxy;
  let started: StartedApp;
  beforeAll(async () => {
    database = await createPostgresDatabase();
    const url = new URL(database.url);
    proxy = new TcpProxy(url.hostname, Number(url.port || 5432));
    await proxy.listen();
    url.port = String(proxy.port);
    started = await startApp({ DATABASE_URL: url.href });
  });
  afterAll(async () => {
    await started?.stop();
    await proxy?.cut();
    await database?.drop();
  });

  it('answers DATABASE_UNAVAILABLE for a generation memory does not hold, and for the list', async () => {
    await proxy.cut();
    const unknown = await graphql(started, '', GENERATION, { id: '00000000-0000-4000-8000-000000000000' });
    expect(unknown.data).toEqual({ generation: null });
    expect(unknown.errors![0]).toMatchObject({ extensions: { code: 'DATABASE_UNAVAILABLE' }, message: expect.stringMatching(/^The generation history cannot be read from the database \(.+\); try again later\.$/) });
    const listed = await graphql(started, '', GENERATIONS, { first: 5 });
    expect(listed.errors![0]!.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    await proxy.restore();
    expect((await graphql(started, '', GENERATIONS, { first: 5 })).data).toEqual({ generations: { edges: [], pageInfo: { hasNextPage: false, endCursor: null } } });
  });
});
