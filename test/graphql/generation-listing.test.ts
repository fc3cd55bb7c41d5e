/**
 * Aliased starts in one mutation are admitted or refused one by one (the admitted ones return their
 * ids, answered 200), and `generations` lists a caller's own generations — newest first, a page at
 * a time — so running work can always be found and cancelled; on one instance and, over Redis,
 * across instances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import type { GraphQLResponse } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const ENDLESS = 'endless?gapMs=20';

const GENERATIONS = `query List($status: GenerationStatus, $kind: GenerationKind, $first: Int, $after: String) {
  generations(status: $status, kind: $kind, first: $first, after: $after) {
    edges { cursor node { id status createdAt ... on ChatGeneration { text } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

interface ListedPage {
  edges: Array<{ cursor: string; node: { id: string; status: string; createdAt: string; text?: string } }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

let upstream: FakeOpenAIUpstream;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

function settings(extra: Record<string, string> = {}): Record<string, string> {
  return {
    API_KEYS: 'alice-key,bob-key',
    RATE_LIMIT_PER_MINUTE: '0',
    MAX_CONCURRENT_GENERATIONS_PER_KEY: '8',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: [ENDLESS, 'fake-model'] }]),
    ...extra,
  };
}

async function graphql(url: string, key: string | undefined, query: string, variables: Record<string, unknown> = {}): Promise<{ status: number; body: GraphQLResponse }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse };
}

/** `mutation { a0: startChatCompletion(…) { id } … a{count-1}: … }` on the endless model. */
function aliasedStarts(count: number): string {
  const fields = Array.from(
    { length: count },
    (_, index) => `a${index}: startChatCompletion(input: { model: "fake:${ENDLESS}", messages: [{ role: USER, content: "go ${index}" }] }) { id status }`,
  );
  return `mutation { ${fields.join('\n')} }`;
}

async function listAll(url: string, key: string | undefined, variables: Record<string, unknown>): Promise<ListedPage['edges']> {
  const edges: ListedPage['edges'] = [];
  let after: string | undefined;
  for (;;) {
    const { body } = await graphql(url, key, GENERATIONS, { ...variables, ...(after && { after }) });
    expect(body.errors).toBeUndefined();
    const page = body.data.generations as ListedPage;
    edges.push(...page.edges);
    if (!page.pageInfo.hasNextPage) return edges;
    after = page.pageInfo.endCursor!;
  }
}

/** The listed generations are exactly `ids`, each once, in order of creation time, newest first (one millisecond's starts in id order). */
function expectNewestFirst(listed: ListedPage['edges'], ids: string[]): void {
  expect(listed.map((edge) => edge.node.id).sort()).toEqual([...ids].sort());
  const positions = listed.map((edge) => [Date.parse(edge.node.createdAt), edge.node.id] as const);
  const expected = [...positions].sort(([timeA, idA], [timeB, idB]) => timeB - timeA || (idA < idB ? 1 : -1));
  expect(positions).toEqual(expected);
}

describe('aliased starts and the generations list', () => {
  let started: StartedApp;

  beforeAll(async () => {
    started = await startApp(settings());
  });

  afterAll(async () => {
    await started?.stop();
  });

  it('admits eight of ten aliased starts, answers 200 with their ids and errors at the refused paths, and lists them for cancelling', async () => {
    const { status, body } = await graphql(started.graphqlUrl, 'alice-key', aliasedStarts(10));
    expect(status).toBe(200);
    const data = body.data as Record<string, { id: string; status: string } | null>;
    const admitted = Object.values(data).filter((value): value is { id: string; status: string } => value !== null);
    expect(admitted).toHaveLength(8);
    expect(admitted.every((generation) => generation.status === 'RUNNING')).toBe(true);
    expect([data.a8, data.a9]).toEqual([null, null]);
    expect(body.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([
      [['a8'], 'RATE_LIMITED'],
      [['a9'], 'RATE_LIMITED'],
    ]);
    expect(body.errors?.[0]?.extensions).not.toHaveProperty('http');

    // Listed newest first, three at a time, every one once.
    const listed = await listAll(started.graphqlUrl, 'alice-key', { status: 'RUNNING', kind: 'CHAT', first: 3 });
    expectNewestFirst(listed, admitted.map((generation) => generation.id));

    // Another key sees none of them, and none is an image.
    expect(await listAll(started.graphqlUrl, 'bob-key', {})).toEqual([]);
    expect(await listAll(started.graphqlUrl, 'alice-key', { kind: 'IMAGE' })).toEqual([]);

    // Found, so cancelled: the list then holds them as CANCELLED, and none RUNNING.
    for (const edge of listed) {
      const cancelled = await graphql(started.graphqlUrl, 'alice-key', 'mutation($id: ID!) { cancelGeneration(id: $id) { status } }', { id: edge.node.id });
      expect(cancelled.body.data.cancelGeneration.status).toBe('CANCELLED');
    }
    expect(await listAll(started.graphqlUrl, 'alice-key', { status: 'RUNNING' })).toEqual([]);
    expect((await listAll(started.graphqlUrl, 'alice-key', { status: 'CANCELLED' })).map((edge) => edge.node.id).sort()).toEqual(
      admitted.map((generation) => generation.id).sort(),
    );
  });

  it('still answers a lone refused start with 429', async () => {
    const running = await graphql(started.graphqlUrl, 'bob-key', aliasedStarts(8));
    expect(Object.values(running.body.data).every((value) => value !== null)).toBe(true);
    const refused = await graphql(started.graphqlUrl, 'bob-key', aliasedStarts(1));
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ data: { a0: null }, errors: [{ extensions: { code: 'RATE_LIMITED' } }] });
    for (const edge of await listAll(started.graphqlUrl, 'bob-key', { status: 'RUNNING' })) {
      await graphql(started.graphqlUrl, 'bob-key', 'mutation($id: ID!) { cancelGeneration(id: $id) { status } }', { id: edge.node.id });
    }
  });

  it('refuses a page size outside 1..100 and a cursor it did not make with BAD_USER_INPUT', async () => {
    for (const variables of [{ first: 0 }, { first: 101 }, { after: 'bm90IGEgY3Vyc29y' }]) {
      const { body } = await graphql(started.graphqlUrl, 'alice-key', GENERATIONS, variables);
      expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });
});

describe('without API keys', () => {
  it('lists every generation', async () => {
    const started = await startApp({ ...settings(), API_KEYS: '' });
    try {
      const { body } = await graphql(started.graphqlUrl, undefined, aliasedStarts(2).replaceAll(ENDLESS, 'fake-model'));
      const ids = Object.values(body.data as Record<string, { id: string }>).map((generation) => generation.id);
      expectNewestFirst(await listAll(started.graphqlUrl, undefined, {}), ids);
    } finally {
      await started.stop();
    }
  });
});

describe('scaled out over Redis', () => {
  it('lists on B the running generations started on A, with the text streamed so far, and only the caller\'s', async () => {
    const redisSettings = settings({ REDIS_URL, SUBSCRIPTION_RECHECK_MS: '300' });
    const [first, second] = await Promise.all([startApp(redisSettings), startApp(redisSettings)]);
    try {
      const { body } = await graphql(first.graphqlUrl, 'alice-key', aliasedStarts(3));
      const ids = Object.values(body.data as Record<string, { id: string }>).map((generation) => generation.id);
      // The last one has streamed text once its first delta is in the shared log.
      const last = await first.app.generations.subscribe(ids.at(-1)!);
      await last.next();
      await last.next();
      await last.return?.();
      const listed = await listAll(second.graphqlUrl, 'alice-key', { status: 'RUNNING', first: 2 });
      expectNewestFirst(listed, ids);
      expect(listed.find((edge) => edge.node.id === ids.at(-1))!.node.text!.length).toBeGreaterThan(0);
      const others = await listAll(second.graphqlUrl, 'bob-key', { status: 'RUNNING' });
      expect(others.filter((edge) => ids.includes(edge.node.id))).toEqual([]);
      for (const id of ids) await graphql(second.graphqlUrl, 'alice-key', 'mutation($id: ID!) { cancelGeneration(id: $id) { status } }', { id });
      expect((await listAll(second.graphqlUrl, 'alice-key', { status: 'RUNNING' })).filter((edge) => ids.includes(edge.node.id))).toEqual([]);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
