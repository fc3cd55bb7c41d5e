/**
 * Usage summaries on both drivers: grouped by key, model, provider and UTC day, or not at all;
 * the time range is half open; cost only when every row of a group has one; means of time to first
 * token and duration; one owner's rows; the group limit; days in UTC whatever the session's zone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { GenerationStore, type GenerationRow } from '../../src/storage/generation-store.js';
import { openDatabase, type Database } from '../../src/storage/open-database.js';
import { UsageStore } from '../../src/storage/usage-store.js';
import { TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

let next = 0;
/** A row that finished at `finishedAt`, one second after it started. */
const row = (finishedAt: string, overrides: Partial<GenerationRow> = {}): GenerationRow => ({
  id: `g${(next += 1)}`,
  kind: 'chat',
  owner: 'key:alice',
  provider: 'fake',
  model: 'small',
  status: 'completed',
  promptTokens: 10,
  completionTokens: 20,
  images: 0,
  timeToFirstTokenMs: 100,
  durationMs: 1000,
  cost: 0.5,
  createdAt: new Date(new Date(finishedAt).getTime() - 1000),
  finishedAt: new Date(finishedAt),
  result: {},
  ...overrides,
});

const ROWS: GenerationRow[] = [
  row('2026-12-01T00:00:00.000Z'), // the first instant of the range
  row('2026-12-01T23:59:59.999Z', { model: 'large', cost: 2, timeToFirstTokenMs: 300, durationMs: 3000 }),
  row('2026-12-02T00:00:00.000Z', { owner: 'key:bob', status: 'failed', errorCode: 'UPSTREAM_ERROR', completionTokens: 0, timeToFirstTokenMs: undefined, cost: undefined }),
  row('2026-12-02T12:00:00.000Z', { owner: 'key:bob', kind: 'image', provider: 'pictures', model: 'flux', promptTokens: 0, completionTokens: 0, images: 2, cost: 0.08 }),
  row('2026-12-02T13:00:00.000Z', { owner: undefined, status: 'cancelled', cost: undefined, timeToFirstTokenMs: undefined }),
  row('2026-12-03T00:00:00.000Z'), // the end of the range: not in it
  row('2026-11-30T23:59:59.999Z'), // before the range
];

const RANGE = { from: new Date('2026-12-01T00:00:00.000Z'), to: new Date('2026-12-03T00:00:00.000Z'), limit: 100 };

describe.each(TEST_DATABASES)('$driver', ({ driver, create }) => {
  let test: TestDatabase;
  let usage: UsageStore;
  beforeAll(async () => {
    test = await create();
    await new GenerationStore(test.database.db).recordMany(ROWS);
    usage = new UsageStore(test.database.db);
  });
  afterAll(async () => {
    await test?.drop();
  });

  it('sums every row of the range in one group when grouped by nothing', async () => {
    expect(await usage.summarize({ ...RANGE, groupBy: [] })).toEqual([
      {
        key: null,
        model: null,
        provider: null,
        day: null,
        requests: 5,
        completed: 3,
        failed: 1,
        cancelled: 1,
        promptTokens: 40,
        completionTokens: 60,
        totalTokens: 100,
        images: 2,
        cost: null,
        unpricedRequests: 2,
        meanTimeToFirstTokenMs: (100 + 300 + 100) / 3,
        meanDurationMs: (1000 + 3000 + 1000 + 1000 + 1000) / 5,
      },
    ]);
    expect(await usage.summarize({ ...RANGE, from: new Date('2030-01-01T00:00:00Z'), to: new Date('2030-02-01T00:00:00Z'), groupBy: [] })).toEqual([]);
  });

  it('groups by key and UTC day, ordered by day then key, with a null key for starts from code', async () => {
    const groups = await usage.summarize({ ...RANGE, groupBy: ['key', 'day'] });
    expect(groups.map(({ key, day, requests, totalTokens, images, cost, unpricedRequests }) => ({ key, day, requests, totalTokens, images, cost, unpricedRequests }))).toEqual([
      { key: 'key:alice', day: '2026-12-01', requests: 2, totalTokens: 60, images: 0, cost: 2.5, unpricedRequests: 0 },
      { key: 'key:bob', day: '2026-12-02', requests: 2, totalTokens: 10, images: 2, cost: null, unpricedRequests: 1 },
      { key: null, day: '2026-12-02', requests: 1, totalTokens: 30, images: 0, cost: null, unpricedRequests: 1 },
    ]);
    expect(groups.every((group) => group.model === null && group.provider === null)).toBe(true);
  });

  it('groups by provider and model, with the means of each group', async () => {
    const groups = await usage.summarize({ ...RANGE, groupBy: ['model', 'provider'] });
    expect(groups.map(({ provider, model, requests, meanTimeToFirstTokenMs, meanDurationMs, cost }) => ({ provider, model, requests, meanTimeToFirstTokenMs, meanDurationMs, cost }))).toEqual([
      { model: 'flux', provider: 'pictures', requests: 1, meanTimeToFirstTokenMs: 100, meanDurationMs: 1000, cost: 0.08 },
      { model: 'large', provider: 'fake', requests: 1, meanTimeToFirstTokenMs: 300, meanDurationMs: 3000, cost: 2 },
      { model: 'small', provider: 'fake', requests: 3, meanTimeToFirstTokenMs: 100, meanDurationMs: 1000, cost: null },
    ]);
  });

  it("gives one owner's rows only, and at most the limit of groups", async () => {
    const bob = await usage.summarize({ ...RANGE, groupBy: ['model'], owner: 'key:bob' });
    expect(bob.map(({ model, requests, failed }) => ({ model, requests, failed }))).toEqual([
      { model: 'flux', requests: 1, failed: 0 },
      { model: 'small', requests: 1, failed: 1 },
    ]);
    const limited = await usage.summarize({ ...RANGE, groupBy: ['model'], limit: 2 });
    expect(limited.map((group) => group.model)).toEqual(['flux', 'large']);
  });

  it('counts days in UTC whatever the time zone of the database session', async () => {
    let database: Database = test.database;
    if (driver === 'pglite') await database.db.execute(sql`set time zone 'Pacific/Kiritimati'`);
    else {
      // New connections of the database take the zone; a second pool has only new ones.
      await database.db.execute(sql`do $$ begin execute format('alter database %I set timezone to %L', current_database(), 'Pacific/Kiritimati'); end $$`);
      database = await openDatabase({ driver: 'postgres', url: test.url });
    }
    try {
      const zone = await database.db.execute<{ TimeZone: string }>(sql`show time zone`);
      expect((zone as unknown as { rows: Array<{ TimeZone: string }> }).rows[0]!.TimeZone).toBe('Pacific/Kiritimati');
      const days = await new UsageStore(database.db).summarize({ ...RANGE, groupBy: ['day'] });
      expect(days.map(({ day, requests }) => ({ day, requests }))).toEqual([
        { day: '2026-12-01', requests: 2 },
        { day: '2026-12-02', requests: 3 },
      ]);
    } finally {
      if (database !== test.database) await database.close();
    }
  });
});
