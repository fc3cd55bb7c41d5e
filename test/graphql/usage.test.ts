/**
 * Usage through GraphQL (`usage`, `myUsage`) and REST (`GET /v1/usage`), on both drivers: the rows
 * of generations that ended — the real local model and the fake OpenAI-compatible upstream — summed
 * per key, model, provider and UTC day; costs from `MODEL_PRICES` only for priced models; a
 * caller's own usage only; the same report over REST, with OpenAI-style errors for bad parameters;
 * and without a database, one clear error saying usage needs one.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { graphqlRequest, type GraphQLResponse } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

const KEYS = { alice: 'alice-usage-key-0123', bob: 'bob-usage-key-0123', master: 'master-usage-key-0123' };
/** The owner the gateway names a key's generations with: `key:` and the first 16 hex digits of its sha256. */
const ownerOf = (key: string) => `key:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;

const PRICED = 'stream?tokens=12';
const PRICES = { [`fake:${PRICED}`]: { inputPerMillionTokens: 1000, outputPerMillionTokens: 2000 } };
/** Four prompt words (the fake upstream counts words as prompt tokens) and twelve completion tokens, at the prices above. */
const PRICED_COST = (4 * 1000 + 12 * 2000) / 1_000_000;

const REPORT = `query($from: DateTime, $to: DateTime, $groupBy: [UsageGroupBy!]) {
  REPORT(from: $from, to: $to, groupBy: $groupBy) {
    from to groupBy
    groups {
      key model provider day requests completed failed cancelled promptTokens completionTokens totalTokens images
      cost unpricedRequests meanTimeToFirstTokenMs meanDurationMs
    }
  }
}`;

/** POSTs a GraphQL operation with the key. */
async function graphql<Data = any>(started: StartedApp, key: string, query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<Data>> {
  const response = await fetch(started.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<Data>;
}

/** `usage` or `myUsage` with the key. */
async function report(started: StartedApp, key: string, field: 'usage' | 'myUsage', variables: Record<string, unknown> = {}) {
  const result = await graphql(started, key, REPORT.replace('REPORT', field), variables);
  expect(result.errors).toBeUndefined();
  return result.data[field];
}

/** A non-streamed REST chat with the key; resolves with its status. */
async function chat(started: StartedApp, key: string, body: Record<string, unknown>): Promise<number> {
  const response = await postJson(started.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'one two three four' }], ...body }, {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
  });
  await response.arrayBuffer();
  return response.status;
}

describe.each(TEST_DATABASES)('$driver', ({ create }) => {
  let test: TestDatabase;
  let upstream: FakeOpenAIUpstream;
  let started: StartedApp;
  let today: string;
  beforeAll(async () => {
    test = await create();
    upstream = await startFakeOpenAIUpstream();
    started = await startApp({
      DATABASE_URL: test.url,
      API_KEYS: `${KEYS.alice},${KEYS.bob}`,
      MASTER_KEY: KEYS.master,
      MODEL_PRICES: JSON.stringify(PRICES),
      BREAKER_ENABLED: 'false',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: [PRICED, 'server-error'] }]),
    });
    expect(await chat(started, KEYS.alice, { model: PRICED })).toBe(200);
    expect(await chat(started, KEYS.alice, { model: PRICED })).toBe(200);
    expect(await chat(started, KEYS.alice, { model: 'server-error' })).toBe(502);
    expect(await chat(started, KEYS.alice, { model: 'stories260K', max_tokens: 8 })).toBe(200);
    expect(await chat(started, KEYS.bob, { model: PRICED })).toBe(200);
    await started.app.usageRecorder!.flush();
    today = new Date().toISOString().slice(0, 10);
  });
  afterAll(async () => {
    await started?.stop();
    await upstream?.close();
    await test?.drop();
  });

  it("myUsage sums the caller's own generations per provider and model, priced ones with their cost", async () => {
    const mine = await report(started, KEYS.alice, 'myUsage', { groupBy: ['PROVIDER', 'MODEL'] });
    expect(mine.groupBy).toEqual(['PROVIDER', 'MODEL']);
    expect(new Date(mine.to).getTime() - new Date(mine.from).getTime()).toBe(30 * 86_400_000);
    const byModel = Object.fromEntries(mine.groups.map((group: { model: string }) => [group.model, group]));
    expect(Object.keys(byModel).sort()).toEqual(['server-error', 'stories260K', PRICED].sort());
    expect(byModel[PRICED]).toMatchObject({ key: null, day: null, provider: 'fake', requests: 2, completed: 2, failed: 0, cancelled: 0, promptTokens: 8, completionTokens: 24, totalTokens: 32, images: 0, unpricedRequests: 0 });
    expect(byModel[PRICED].cost).toBeCloseTo(2 * PRICED_COST, 12);
    expect(byModel[PRICED].meanTimeToFirstTokenMs).toBeGreaterThanOrEqual(0);
    expect(byModel[PRICED].meanDurationMs).toBeGreaterThanOrEqual(byModel[PRICED].meanTimeToFirstTokenMs);
    expect(byModel['server-error']).toMatchObject({ requests: 1, completed: 0, failed: 1, cost: null, unpricedRequests: 1, meanTimeToFirstTokenMs: null });
    expect(byModel.stories260K).toMatchObject({ provider: 'llama-cpp', requests: 1, completed: 1, completionTokens: 8, cost: null, unpricedRequests: 1 });
    expect(byModel.stories260K.promptTokens).toBeGreaterThan(0);

    const bob = await report(started, KEYS.bob, 'myUsage');
    expect(bob.groups).toHaveLength(1);
    expect(bob.groups[0]).toMatchObject({ requests: 1, promptTokens: 4, completionTokens: 12 });
    expect(bob.groups[0].cost).toBeCloseTo(PRICED_COST, 12);
  });

  it("usage gives the master key every caller's, by key and UTC day; a range without generations has no groups", async () => {
    const refused = await graphql(started, KEYS.bob, REPORT.replace('REPORT', 'usage'));
    expect(refused.errors![0]).toMatchObject({ extensions: { code: 'FORBIDDEN' } }); // a static key is no admin
    const all = await report(started, KEYS.master, 'usage', { groupBy: ['DAY', 'KEY', 'DAY'] });
    expect(all.groupBy).toEqual(['DAY', 'KEY']);
    expect(all.groups.map(({ key, day, requests, failed, cost }: Record<string, unknown>) => ({ key, day, requests, failed, cost }))).toEqual(
      [
        { key: ownerOf(KEYS.alice), day: today, requests: 4, failed: 1, cost: null },
        { key: ownerOf(KEYS.bob), day: today, requests: 1, failed: 0, cost: expect.closeTo(PRICED_COST, 12) },
      ].sort((a, b) => (a.key < b.key ? -1 : 1)),
    );
    const past = await report(started, KEYS.master, 'usage', { from: '2020-01-01T00:00:00Z', to: '2020-02-01T00:00:00Z' });
    expect(past).toEqual({ from: '2020-01-01T00:00:00.000Z', to: '2020-02-01T00:00:00.000Z', groupBy: [], groups: [] });
  });

  it('refuses a range that does not run forwards', async () => {
    const result = await graphql(started, KEYS.alice, REPORT.replace('REPORT', 'myUsage'), { from: '2026-12-02T00:00:00Z', to: '2026-12-01T00:00:00Z' });
    expect(result.errors![0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: 'from must be before to (got from 2026-12-02T00:00:00.000Z, to 2026-12-01T00:00:00.000Z)' });
  });

  it('GET /v1/usage gives the same reports, snake_case, and OpenAI-style errors for bad parameters', async () => {
    const headers = { authorization: `Bearer ${KEYS.alice}` };
    const mine = await fetch(`${started.url}/v1/usage?group_by=model,provider`, { headers });
    expect(mine.status).toBe(200);
    const body = (await mine.json()) as { object: string; scope: string; group_by: string[]; data: Array<Record<string, unknown>> };
    expect(body).toMatchObject({ object: 'usage_report', scope: 'mine', group_by: ['model', 'provider'] });
    const graphqlReport = await report(started, KEYS.alice, 'myUsage', { groupBy: ['MODEL', 'PROVIDER'] });
    expect(body.data).toEqual(
      graphqlReport.groups.map((group: Record<string, unknown>) => ({
        key: group.key,
        model: group.model,
        provider: group.provider,
        day: group.day,
        requests: group.requests,
        completed: group.completed,
        failed: group.failed,
        cancelled: group.cancelled,
        prompt_tokens: group.promptTokens,
        completion_tokens: group.completionTokens,
        total_tokens: group.totalTokens,
        images: group.images,
        cost: group.cost,
        unpriced_requests: group.unpricedRequests,
        mean_time_to_first_token_ms: group.meanTimeToFirstTokenMs,
        mean_duration_ms: group.meanDurationMs,
      })),
    );

    // gpt4free's own key header works as well; a date means UTC midnight.
    const all = await fetch(`${started.url}/v1/usage?scope=all&group_by=key&group_by=day&from=${today}`, { headers: { 'g4f-api-key': KEYS.master } });
    const allBody = (await all.json()) as { from: string; data: Array<{ key: string; requests: number }> };
    expect(allBody.from).toBe(`${today}T00:00:00.000Z`);
    expect(allBody.data.map(({ key, requests }) => ({ key, requests })).sort((a, b) => (a.key < b.key ? -1 : 1))).toEqual(
      [
        { key: ownerOf(KEYS.alice), requests: 4 },
        { key: ownerOf(KEYS.bob), requests: 1 },
      ].sort((a, b) => (a.key < b.key ? -1 : 1)),
    );

    for (const [query, param, message] of [
      ['group_by=week', 'group_by[0]', /^group_by\[0\]: group_by lists key, model, provider, day$/],
      ['from=yesterday', 'from', /^from: from must be an ISO 8601 date-time/],
      ['scope=everyone', 'scope', /^scope: scope must be mine or all$/],
      ['from=2026-12-02&to=2026-12-01', null, /^from must be before to/],
    ] as const) {
      const refused = await fetch(`${started.url}/v1/usage?${query}`, { headers });
      expect(refused.status, query).toBe(400);
      const error = ((await refused.json()) as { error: { code: string; type: string; param: string | null; message: string } }).error;
      expect(error).toMatchObject({ code: 'BAD_USER_INPUT', type: 'invalid_request_error', param });
      expect(error.message).toMatch(message);
    }
    expect((await fetch(`${started.url}/v1/usage`)).status).toBe(401);
  });
});

describe('without a database (DATABASE_URL=none)', () => {
  let started: StartedApp;
  beforeAll(async () => {
    started = await startApp();
  });
  afterAll(async () => {
    await started?.stop();
  });

  it('says that usage needs a database, over GraphQL and REST', async () => {
    for (const field of ['usage', 'myUsage']) {
      const result = await graphqlRequest(started.graphqlUrl, `{ ${field} { groups { requests } } }`);
      expect(result.data).toBeNull();
      expect(result.errors![0]).toMatchObject({
        extensions: { code: 'DATABASE_NOT_CONFIGURED' },
        message: 'Usage needs a database, and this server runs without one (DATABASE_URL=none): unset DATABASE_URL for the embedded database, or point it at PostgreSQL.',
      });
    }
    const response = await fetch(`${started.url}/v1/usage?scope=all`);
    expect(response.status).toBe(501);
    expect(await response.json()).toEqual({
      error: {
        code: 'DATABASE_NOT_CONFIGURED',
        type: 'server_error',
        param: null,
        message: expect.stringMatching(/^Usage needs a database/),
      },
    });
  });
});
