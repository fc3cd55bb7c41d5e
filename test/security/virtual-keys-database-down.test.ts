/**
 * Virtual keys while PostgreSQL cannot be reached (a TCP proxy in front of it is cut): a key in the
 * cache keeps working, with its budget counted from memory; a key that must be looked up is refused
 * with 503 DATABASE_UNAVAILABLE (graphql-ws: close 1013), never UNAUTHORIZED; the admin operations
 * say the database does not answer; and once it answers again the key is looked up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApiKey, graphqlWithKey, LIST_API_KEYS } from '../helpers/api-key-operations.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { createPostgresDatabase } from '../helpers/test-databases.js';

const MASTER_KEY = 'master-key-0123456789abcdef';
const MODELS_QUERY = '{ models { id } }';

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
    // A long cache time: what is cached stays cached for the whole test.
    started = await startApp({ DATABASE_URL: url.href, MASTER_KEY, API_KEY_CACHE_TTL_MS: '600000' });
  });
  afterAll(async () => {
    await started?.stop();
    await proxy?.cut();
    await database?.drop();
  });

  it('keeps cached keys working and refuses others with DATABASE_UNAVAILABLE until it is back', async () => {
    const cached = await createApiKey(started.graphqlUrl, MASTER_KEY, { name: 'cached', limits: { budgetTokens: 1000, budgetPeriod: 'DAY' } });
    // A budgeted start reads (and caches) the key's use.
    const input = { model: 'stories260K', messages: [{ role: 'USER', content: 'Once' }], maxTokens: 4 };
    const start = 'mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }';
    expect((await graphqlWithKey(started.graphqlUrl, cached.key, start, { input })).body.errors).toBeUndefined();
    await proxy.cut();

    expect((await graphqlWithKey(started.graphqlUrl, cached.key, MODELS_QUERY)).status).toBe(200);
    expect((await graphqlWithKey(started.graphqlUrl, cached.key, start, { input })).body.errors).toBeUndefined();

    const unknownKey = 'sk-gw-looked-up-while-the-database-is-down-000000000';
    const refused = await graphqlWithKey(started.graphqlUrl, unknownKey, MODELS_QUERY);
    expect(refused.status).toBe(503);
    expect(refused.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('database does not answer'), extensions: { code: 'DATABASE_UNAVAILABLE' } });
    const rest = await fetch(`${started.url}/v1/models`, { headers: { authorization: `Bearer ${unknownKey}` } });
    expect(rest.status).toBe(503);
    expect(((await rest.json()) as { error: { code: string } }).error.code).toBe('DATABASE_UNAVAILABLE');
    const closed = await new Promise<number>((resolve) => {
      const socket = new WebSocket(started.webSocketUrl, 'graphql-transport-ws');
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${unknownKey}` } })));
      socket.on('close', (code) => resolve(code));
    });
    expect(closed).toBe(1013);
    expect((await graphqlWithKey(started.graphqlUrl, MASTER_KEY, LIST_API_KEYS)).body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');

    await proxy.restore();
    // The unknown key is now looked up, and refused for what it is.
    await expect.poll(async () => (await graphqlWithKey(started.graphqlUrl, unknownKey, MODELS_QUERY)).status).toBe(401);
  });
});
