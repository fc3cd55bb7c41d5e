/**
 * A virtual key's life, end to end on both databases, as issue 21 states what must work: the master
 * key creates a key over GraphQL; the key streams a chat over graphql-ws; its usage shows in its own
 * `myUsage` and in the admin's `usage`; its token budget then stops it with `BUDGET_EXCEEDED` (REST
 * 429 naming when the period resets); and revoking it closes its open graphql-ws socket with 4403.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, graphqlWithKey, openAcknowledgedSocket, REVOKE_API_KEY } from '../helpers/api-key-operations.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

const MASTER_KEY = 'master-key-of-the-journey-0123';
const USAGE = `query($groupBy: [UsageGroupBy!]) { FIELD(groupBy: $groupBy) { groups { key requests promptTokens completionTokens totalTokens } } }`;

describe.each(TEST_DATABASES)('$driver', ({ create }) => {
  let test: TestDatabase;
  let started: StartedApp;
  beforeAll(async () => {
    test = await create();
    started = await startApp({ DATABASE_URL: test.url, MASTER_KEY });
  });
  afterAll(async () => {
    await started?.stop();
    await test?.drop();
  });

  it('creates, streams, reports, runs out of budget and is revoked', async () => {
    const { key, apiKey } = await createApiKey(started.graphqlUrl, MASTER_KEY, { name: 'journey', limits: { budgetTokens: 40, budgetPeriod: 'DAY' } });
    expect(key).toMatch(/^sk-gw-/);

    // The key streams a chat over graphql-ws.
    const client = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: `Bearer ${key}` } });
    let completed: { text: string; usage: { promptTokens: number; completionTokens: number } };
    try {
      const events = await collectWebSocket(
        client,
        `subscription { chatCompletion(input: { model: "stories260K", messages: [{ role: USER, content: "Once upon a time" }], maxTokens: 8 }) {
          __typename ... on ChatCompletionCompleted { text usage { promptTokens completionTokens } } } }`,
      );
      completed = events.at(-1)!.data!.chatCompletion;
    } finally {
      await client.dispose();
    }
    expect(completed.usage.completionTokens).toBe(8);
    await started.app.usageRecorder!.flush();
    const used = completed.usage.promptTokens + completed.usage.completionTokens;

    // Its usage: its own, and the admin's view by key.
    const mine = await graphqlWithKey(started.graphqlUrl, key, USAGE.replace('FIELD', 'myUsage'));
    expect(mine.body.data.myUsage.groups).toEqual([{ key: null, requests: 1, promptTokens: completed.usage.promptTokens, completionTokens: 8, totalTokens: used }]);
    const all = await graphqlWithKey(started.graphqlUrl, MASTER_KEY, USAGE.replace('FIELD', 'usage'), { groupBy: ['KEY'] });
    expect(all.body.data.usage.groups).toContainEqual({ key: `key:${apiKey.id}`, requests: 1, promptTokens: completed.usage.promptTokens, completionTokens: 8, totalTokens: used });
    const notAdmin = await graphqlWithKey(started.graphqlUrl, key, USAGE.replace('FIELD', 'usage'));
    expect(notAdmin.body.errors![0]!.extensions!.code).toBe('FORBIDDEN');

    // The next chat would pass the 40-token budget: refused, with when it resets.
    const refused = await postJson(
      started.url,
      '/v1/chat/completions',
      { model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 40 },
      { headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } },
    );
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('BUDGET_EXCEEDED');
    expect(error.message).toMatch(/resets at \d{4}-\d{2}-\d{2}T00:00:00\.000Z/);

    // Revoked: its open socket closes with 4403, and the key is refused from then on.
    const { closed } = await openAcknowledgedSocket(started.webSocketUrl, key);
    const revoked = await graphqlWithKey(started.graphqlUrl, MASTER_KEY, REVOKE_API_KEY, { id: apiKey.id });
    expect(revoked.body.data.revokeApiKey.status).toBe('REVOKED');
    expect((await closed).code).toBe(4403);
    const after = await graphqlWithKey(started.graphqlUrl, key, USAGE.replace('FIELD', 'myUsage'));
    expect(after.status).toBe(401);
  });
});
