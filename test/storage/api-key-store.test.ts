/**
 * Virtual keys in the database, on both drivers: a key is stored as its hash and found by it or by
 * its id, changes set and clear fields, a revocation keeps its first time, the list pages newest
 * first with cursors, and `hasAny` answers. Then the budget ledger over the real `generations`
 * table: the database sum plus the generations that ended but whose rows are not written, each
 * counted once whether its row is written before, during or after a read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/security/api-keys.js';
import { TokenBudgetLedger } from '../../src/security/token-budget-ledger.js';
import { ApiKeyStore, type ApiKeyRecord } from '../../src/storage/api-key-store.js';
import { GenerationStore, type GenerationRow } from '../../src/storage/generation-store.js';
import { TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

const key = (id: string, createdAt: Date, overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id,
  name: `key ${id}`,
  keyHash: hashApiKey(`sk-gw-secret-${id}`),
  keyPrefix: 'sk-gw-abcdef',
  createdAt,
  updatedAt: createdAt,
  limits: {},
  ...overrides,
});

const row = (id: string, owner: string, tokens: number, finishedAt: Date): GenerationRow => ({
  id,
  kind: 'chat',
  owner,
  provider: 'llama-cpp',
  model: 'stories260K',
  status: 'completed',
  promptTokens: tokens - 1,
  completionTokens: 1,
  images: 0,
  durationMs: 10,
  createdAt: finishedAt,
  finishedAt,
  result: {},
});

describe.each(TEST_DATABASES)('$driver', ({ create }) => {
  let test: TestDatabase;
  let store: ApiKeyStore;
  beforeAll(async () => {
    test = await create();
    store = new ApiKeyStore(test.database.db);
  });
  afterAll(async () => {
    await test?.drop();
  });

  it('stores a key with its limits and finds it by hash, by id and by ids', async () => {
    expect(await store.hasAny()).toBe(false);
    const record = key('key_first', new Date('2026-12-01T10:00:00.000Z'), {
      expiresAt: new Date('2027-01-01T00:00:00.000Z'),
      limits: {
        requestsPerMinute: 5,
        tokensPerMinute: 1000,
        maxConcurrentGenerations: 2,
        budgetTokens: 3_000_000_000,
        budgetPeriod: 'month',
        allowedModels: ['stories260K', 'fake:fake-model'],
        allowedProviders: ['llama-cpp'],
      },
    });
    await store.insert(record);
    expect(await store.hasAny()).toBe(true);
    expect(await store.findByHash(record.keyHash)).toEqual(record);
    expect(await store.findById('key_first')).toEqual(record);
    expect(await store.findByHash(hashApiKey('another'))).toBeUndefined();
    expect(await store.findByIds(['key_first', 'key_missing'])).toEqual([record]);
    await expect(store.insert({ ...record, id: 'key_other' })).rejects.toThrow(); // the hash is unique
  });

  it('sets and clears fields in an update, and keeps the first revocation time', async () => {
    const now = new Date('2026-12-02T00:00:00.000Z');
    const updated = await store.update('key_first', { name: 'renamed', expiresAt: null, limits: { tokensPerMinute: null, requestsPerMinute: 9 } }, now);
    expect(updated).toMatchObject({ name: 'renamed', updatedAt: now, limits: { requestsPerMinute: 9, budgetTokens: 3_000_000_000 } });
    expect(updated!.expiresAt).toBeUndefined();
    expect(updated!.limits.tokensPerMinute).toBeUndefined();
    expect(await store.update('key_missing', { name: 'x' }, now)).toBeUndefined();

    const firstRevocation = new Date('2026-12-03T00:00:00.000Z');
    expect((await store.revoke('key_first', firstRevocation))!.revokedAt).toEqual(firstRevocation);
    const again = await store.revoke('key_first', new Date('2026-12-04T00:00:00.000Z'));
    expect(again!.revokedAt).toEqual(firstRevocation);
    expect(await store.revoke('key_missing', firstRevocation)).toBeUndefined();
  });

  it('lists newest first, a page at a time, ties broken by id', async () => {
    const sameTime = new Date('2026-12-05T00:00:00.000Z');
    await store.insert(key('key_b', sameTime));
    await store.insert(key('key_c', sameTime));
    await store.insert(key('key_d', new Date('2026-12-06T00:00:00.000Z')));
    const first = await store.list(2);
    expect(first.records.map((record) => record.id)).toEqual(['key_d', 'key_c']);
    expect(first.hasNextPage).toBe(true);
    const last = first.records.at(-1)!;
    const second = await store.list(2, { createdAt: last.createdAt, id: last.id });
    expect(second.records.map((record) => record.id)).toEqual(['key_b', 'key_first']);
    expect(second.hasNextPage).toBe(false);
  });

  it('budget ledger: the database sum and the unwritten generations, each counted once', async () => {
    const generations = new GenerationStore(test.database.db);
    const owner = 'key:key_ledger';
    const since = new Date('2026-12-01T00:00:00.000Z');
    const inPeriod = new Date('2026-12-10T00:00:00.000Z');
    await generations.record(row('gen-old', owner, 1000, new Date('2026-11-30T23:59:59.999Z'))); // before the period
    await generations.record(row('gen-1', owner, 10, inPeriod));
    await generations.record(row('gen-other', 'key:key_other', 500, inPeriod));
    let clock = Date.parse('2026-12-10T00:00:01.000Z');
    const ledger = new TokenBudgetLedger({ source: generations, cacheTtlMs: 1000, maxCachedSums: 10, now: () => clock });

    expect(await ledger.used(owner, since)).toBe(10);
    ledger.hold(owner, 'reservation-1', 40); // a running generation's estimate
    expect(await ledger.used(owner, since)).toBe(50);

    // It ends using 25 tokens; its row is not written yet.
    ledger.release(owner, 'reservation-1');
    ledger.ended(owner, 'gen-2', 25, inPeriod);
    expect(await ledger.used(owner, since)).toBe(35);

    // Written while the cached sum (read before) lacks it: still counted once.
    clock += 10;
    await generations.record(row('gen-2', owner, 25, inPeriod));
    ledger.written([{ id: 'gen-2' }]);
    expect(await ledger.used(owner, since)).toBe(35);

    // The next read has the row: counted once, from the database, and forgotten in memory.
    clock += 1000;
    expect(await ledger.used(owner, since)).toBe(35);
    expect(ledger.size.endedGenerations).toBe(0);

    // Rows of unknown generations (not budgeted here) change nothing.
    ledger.written([{ id: 'gen-other' }]);
    expect(await ledger.used(owner, since)).toBe(35);
  });
});
