/**
 * Every ended generation leaves one row in the database, on both drivers: a completed local chat
 * (tokens, time to first token, the text for later), a failed one (its error code); and while
 * PostgreSQL is unreachable the generations still run, `/readyz` says degraded (`/healthz`, the
 * liveness probe, stays 200), the rows wait in
 * memory up to `USAGE_QUEUE_MAX` (more are dropped and counted in `/metrics`) and are written when
 * the database answers again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationStore } from '../../src/storage/generation-store.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { createPostgresDatabase, TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

/** A non-streamed chat over REST; resolves with the reply's generation id (the `chatcmpl-` suffix). */
async function chat(started: StartedApp, body: Record<string, unknown>): Promise<{ status: number; id: string }> {
  const response = await postJson(started.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8, ...body });
  const json = (await response.json()) as { id?: string; error?: { message: string } };
  return { status: response.status, id: (json.id ?? '').replace(/^chatcmpl-/, '') };
}

describe.each(TEST_DATABASES)('$driver', ({ create }) => {
  let test: TestDatabase;
  let started: StartedApp;
  beforeAll(async () => {
    test = await create();
    // PGlite in memory cannot be shared: the app opens its own, so the rows are read through the app's database.
    started = await startApp({ DATABASE_URL: test.url });
  });
  afterAll(async () => {
    await started?.stop();
    await test?.drop();
  });

  it('writes a row for a completed and a failed generation', async () => {
    const completed = await chat(started, { model: 'stories260K' });
    expect(completed.status).toBe(200);
    const failed = await chat(started, { model: 'stories260K', messages: [{ role: 'user', content: 'x '.repeat(2000) }] });
    expect(failed.status).toBe(400);
    await started.app.usageRecorder!.flush();

    const store = new GenerationStore(started.app.database!.db);
    const row = await store.get(completed.id);
    expect(row).toMatchObject({ kind: 'chat', provider: 'llama-cpp', model: 'stories260K', status: 'completed', completionTokens: 8, images: 0 });
    expect(row!.promptTokens).toBeGreaterThan(0);
    expect(row!.timeToFirstTokenMs).toBeGreaterThanOrEqual(0);
    expect(row!.timeToFirstTokenMs).toBeLessThanOrEqual(row!.durationMs);
    expect(row!.result).toMatchObject({ finishReason: 'length', usage: { completionTokens: 8 } });
    // Started, at least one delta, completed: the sequence a subscriber of the expired generation is told about.
    expect(row!.result.lastSequence).toBeGreaterThanOrEqual(3);
    expect((row!.result.text as string).length).toBeGreaterThan(0);
    expect(row!.owner).toBe('ip:127.0.0.1');
    const all = await started.app.database!.db.query.generations.findMany();
    expect(all.find((candidate) => candidate.status === 'failed')).toMatchObject({ errorCode: 'CONTEXT_LENGTH_EXCEEDED', completionTokens: 0, timeToFirstTokenMs: null });
  });
});

describe('PostgreSQL unreachable while running', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let proxy: TcpProxy;
  let started: StartedApp;
  beforeAll(async () => {
    database = await createPostgresDatabase();
    const url = new URL(database.url);
    proxy = new TcpProxy(url.hostname, Number(url.port || 5432));
    await proxy.listen();
    url.port = String(proxy.port);
    started = await startApp({ DATABASE_URL: url.href, USAGE_QUEUE_MAX: '2' });
  });
  afterAll(async () => {
    await started?.stop();
    await proxy?.cut();
    await database?.drop();
  });

  it('keeps generating, waits with a bound, says so, and writes the rows when it is back', async () => {
    await proxy.cut();
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const reply = await chat(started, { model: 'stories260K' });
      expect(reply.status).toBe(200);
      ids.push(reply.id);
    }
    await started.app.usageRecorder!.flush(); // one attempt, which fails
    const readiness = await fetch(`${started.url}/readyz`);
    expect(readiness.status).toBe(503);
    const { status, reason } = (await readiness.json()) as { status: string; reason: string };
    expect(status).toBe('degraded');
    // Both checks fail: the database's ping, and the rows waiting to be written.
    expect(reason).toMatch(
      /^database postgres:\/\/postgres@127\.0\.0\.1:\d+\/gateway_test_\w+ is unreachable \(connect ECONNREFUSED [\d.:]+\); usage records cannot be written to the database \([^()]+\); 2 waiting, 1 dropped$/,
    );
    // The driver's reason, never Drizzle's wrapper with the statement and its parameters (the rows' text).
    expect(reason).not.toMatch(/insert into|params:|Once upon/i);
    expect(reason).toContain(`:${proxy.port}/`);
    // Liveness: the process serves; a restart would not bring the database back.
    const health = await fetch(`${started.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const during = await (await fetch(`${started.url}/metrics`)).text();
    expect(during).toContain('gateway_usage_rows_waiting 2');
    expect(during).toContain('gateway_usage_rows_dropped_total 1');

    await proxy.restore();
    await started.app.usageRecorder!.flush();
    const store = new GenerationStore(started.app.database!.db);
    expect(await store.get(ids[0]!)).toMatchObject({ status: 'completed' });
    expect(await store.get(ids[1]!)).toMatchObject({ status: 'completed' });
    expect(await store.get(ids[2]!)).toBeUndefined(); // the one past USAGE_QUEUE_MAX
    // The database check's last result answers for up to a second.
    await expect.poll(async () => (await fetch(`${started.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${started.url}/metrics`)).text();
    expect(metrics).toContain('gateway_usage_rows_dropped_total 1');
    expect(metrics).toContain('gateway_usage_rows_waiting 0');
  });
});
