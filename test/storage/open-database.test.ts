/**
 * The schema on both drivers: migrations apply to an empty database and again to a migrated one
 * (nothing to do), PostgreSQL instances that start together migrate once, an unreachable server is
 * one line naming it without its password, and the generations table keeps what it is given.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { DatabaseUnavailableError, openDatabase } from '../../src/storage/open-database.js';
import { GenerationStore, type GenerationRow } from '../../src/storage/generation-store.js';
import { createPostgresDatabase, TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

const row = (id: string, overrides: Partial<GenerationRow> = {}): GenerationRow => ({
  id,
  kind: 'chat',
  owner: 'key:key_a',
  provider: 'llama-cpp',
  model: 'stories260K',
  status: 'completed',
  promptTokens: 12,
  completionTokens: 30,
  images: 0,
  timeToFirstTokenMs: 4,
  durationMs: 95,
  createdAt: new Date('2026-12-07T10:00:00.000Z'),
  finishedAt: new Date('2026-12-07T10:00:00.095Z'),
  result: { text: 'Once upon a time', finishReason: 'stop' },
  ...overrides,
});

describe.each(TEST_DATABASES)('$driver', ({ create }) => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await create();
  });
  afterAll(async () => {
    await test?.drop();
  });

  it('has every table after the migrations', async () => {
    const tables = await test.database.db.execute<{ table_name: string }>(
      sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
    );
    expect((tables as unknown as { rows: Array<{ table_name: string }> }).rows.map((table) => table.table_name)).toEqual([
      'api_keys',
      'conversation_messages',
      'conversations',
      'generations',
    ]);
  });

  it('stores a generation once, reads it back, and sums an owner\'s tokens since a time', async () => {
    const store = new GenerationStore(test.database.db);
    await store.record(row('g1'));
    await store.record(row('g1', { promptTokens: 999 })); // a retried write changes nothing
    await store.record(row('g2', { finishedAt: new Date('2026-12-08T00:00:01.000Z'), cost: 0.25, errorCode: undefined }));
    await store.record(row('g3', { owner: undefined, status: 'failed', errorCode: 'UPSTREAM_TIMEOUT', timeToFirstTokenMs: undefined }));
    expect(await store.get('g1')).toEqual(row('g1'));
    expect(await store.get('g3')).toEqual(row('g3', { owner: undefined, status: 'failed', errorCode: 'UPSTREAM_TIMEOUT', timeToFirstTokenMs: undefined }));
    expect(await store.get('nope')).toBeUndefined();
    expect(await store.tokensSince('key:key_a', new Date('2026-12-07T00:00:00Z'))).toBe(84);
    expect(await store.tokensSince('key:key_a', new Date('2026-12-08T00:00:00Z'))).toBe(42);
    expect(await store.tokensSince('key:other', new Date(0))).toBe(0);
  });
});

describe('PostgreSQL', () => {
  it('migrates once when instances start together, and again is a no-op', async () => {
    const { url, drop } = await createPostgresDatabase();
    try {
      const opened = await Promise.all([1, 2, 3].map(() => openDatabase({ driver: 'postgres', url })));
      const again = await openDatabase({ driver: 'postgres', url });
      const migrations = await again.db.execute(sql`select count(*)::int as count from drizzle.__drizzle_migrations`);
      expect((migrations as unknown as { rows: Array<{ count: number }> }).rows[0]!.count).toBe(2); // 0000_initial, 0001_generation_listing
      await Promise.all([...opened, again].map((database) => database.close()));
    } finally {
      await drop();
    }
  });

  it('says in one line that it cannot reach the server, without the password', async () => {
    const error = await openDatabase({ driver: 'postgres', url: 'postgres://gateway:s3cret-password@127.0.0.1:1/gateway' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect((error as Error).message).toMatch(/^Cannot reach PostgreSQL at postgres:\/\/gateway:\*\*\*@127\.0\.0\.1:1\/gateway: .*ECONNREFUSED/);
    expect((error as Error).message).not.toContain('s3cret');
  });
});
