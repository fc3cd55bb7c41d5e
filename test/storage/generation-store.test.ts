/**
 * Listing stored generations on both drivers: newest first (creation time, then id as JavaScript
 * compares strings), after a position, filtered by owner, status and kind, at most a limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationStore, type GenerationRow } from '../../src/storage/generation-store.js';
import { TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

const row = (id: string, createdAt: string, overrides: Partial<GenerationRow> = {}): GenerationRow => ({
  id,
  kind: 'chat',
  owner: 'key:alice',
  provider: 'fake',
  model: 'small',
  status: 'completed',
  promptTokens: 1,
  completionTokens: 2,
  images: 0,
  durationMs: 5,
  createdAt: new Date(createdAt),
  finishedAt: new Date(new Date(createdAt).getTime() + 5),
  result: { text: id },
  ...overrides,
});

// Two generations of the same millisecond whose ids differ in case and punctuation: byte order
// puts "B-2" before "a_1" before "b_3", which a natural-language collation would not.
const ROWS = [
  row('a_1', '2026-12-01T10:00:00.000Z'),
  row('B-2', '2026-12-01T10:00:00.000Z', { owner: 'key:bob' }),
  row('b_3', '2026-12-01T10:00:00.000Z', { status: 'failed', errorCode: 'UPSTREAM_ERROR' }),
  row('c', '2026-12-01T11:00:00.000Z', { kind: 'image', result: { prompt: 'a cat', images: [] } }),
  row('d', '2026-12-01T09:00:00.000Z', { owner: undefined, status: 'cancelled' }),
];

describe.each(TEST_DATABASES)('$driver', ({ create }) => {
  let test: TestDatabase;
  let store: GenerationStore;
  beforeAll(async () => {
    test = await create();
    store = new GenerationStore(test.database.db);
    await store.recordMany(ROWS);
  });
  afterAll(async () => {
    await test?.drop();
  });

  const ids = (rows: GenerationRow[]) => rows.map((stored) => stored.id);

  it('lists newest first, ties by id in byte order, and pages after a position', async () => {
    expect(ids(await store.list({ limit: 10 }))).toEqual(['c', 'b_3', 'a_1', 'B-2', 'd']);
    expect(ids(await store.list({ limit: 2 }))).toEqual(['c', 'b_3']);
    expect(ids(await store.list({ limit: 10, before: { createdAt: new Date('2026-12-01T10:00:00.000Z'), id: 'b_3' } }))).toEqual(['a_1', 'B-2', 'd']);
    expect(ids(await store.list({ limit: 10, before: { createdAt: new Date('2026-12-01T09:00:00.000Z'), id: 'd' } }))).toEqual([]);
    expect(await store.list({ limit: 1 })).toEqual([ROWS[3]]);
  });

  it('filters by owner, status and kind', async () => {
    expect(ids(await store.list({ limit: 10, owner: 'key:alice' }))).toEqual(['c', 'b_3', 'a_1']);
    expect(ids(await store.list({ limit: 10, owner: 'key:alice', status: 'completed' }))).toEqual(['c', 'a_1']);
    expect(ids(await store.list({ limit: 10, kind: 'image' }))).toEqual(['c']);
    expect(ids(await store.list({ limit: 10, status: 'cancelled' }))).toEqual(['d']);
    expect(await store.list({ limit: 10, owner: 'key:nobody' })).toEqual([]);
  });
});
