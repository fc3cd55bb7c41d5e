/**
 * Generation records shared through Redis, so any instance can answer `generation(id)`, check a
 * subscription, or ask for a cancellation of a generation another instance runs. Each record is one
 * JSON string at `gateway:generation:{id}`, written when the generation starts and when it ends,
 * and kept for the retention time. The running instance's own copy stays authoritative while it runs.
 * A generation run under an owner lease (see generation-leases.ts) is saved with `lease` while it
 * runs, so other instances know that a missing lease means its instance is gone; the same save
 * writes the lease's key (`SET … PX`), and the save of a final record deletes it — one command
 * where the lease took two of its own.
 *
 * Two sorted sets list them newest first (score: `createdAt` in ms, member: the id, so equal scores
 * order by id as the listing does): `gateway:generations:all` and one per caller,
 * `gateway:generations:owner:{owner}`. Members older than the retention time are dropped whenever
 * one is added, and each set expires with its newest member's record.
 */
import type { Redis } from 'ioredis';
import { isAfter, matchesFilter, pageSizeOf, positionOf, type GenerationFilter, type GenerationPage } from '../generations/generation-listing.js';
import { isFinalStatus, type GenerationRecord } from '../generations/generation-records.js';
import { GENERATION_OWNER_PREFIX } from './generation-leases.js';

/** Key prefix of the records. */
export const GENERATION_RECORD_PREFIX = 'gateway:generation:';

/** Key of the sorted set of every kept generation. */
export const GENERATION_INDEX_KEY = 'gateway:generations:all';

/** Key prefix of the sorted sets of each caller's kept generations. */
export const GENERATION_OWNER_INDEX_PREFIX = 'gateway:generations:owner:';

/** Index entries read per round trip while a listing looks for a page of matching records. */
const LIST_BATCH = 200;

/** Index entries a listing reads at most before it answers with what it found (a filter that matches few of many). */
const LIST_SCAN_LIMIT = 10_000;

/** A record as shared: with the owner lease it runs under, when it runs under one. */
export type SharedGenerationRecord = GenerationRecord & {
  /** The instance running it (the value of its lease key) and the lease's time to live, ms. */
  lease?: { owner: string; durationMs: number };
};

/** Where records are shared between instances. */
export interface SharedGenerationRecords {
  /** Stores the record as it is now (with `lease` when given). */
  save(record: GenerationRecord, lease?: SharedGenerationRecord['lease']): Promise<void>;
  /** The record as last saved (dates revived), or undefined. */
  load(generationId: string): Promise<SharedGenerationRecord | undefined>;
  delete(generationId: string): Promise<void>;
  /**
   * One page of the kept records, newest first (see generation-listing.ts).
   * @throws GatewayError `BAD_USER_INPUT` for a bad page size or cursor; the Redis error when it is unreachable.
   */
  list(filter: GenerationFilter): Promise<GenerationPage>;
}

/**
 * The save script, atomic: KEYS[1] the record, KEYS[2] its owner lease's key, KEYS[3…] its indexes;
 * ARGV the record's JSON, the retention (ms), its creation time (ms, the index score), its id, the
 * score below which index entries are past the retention (dropped), the lease's owner ('' for none:
 * the key is left alone), the lease's time to live (ms), and '1' when the record is final (the
 * lease's key is deleted). A ZADD of a member already there only rewrites its score.
 */
const SAVE_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[6] ~= '' then redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[7]) end
if ARGV[8] == '1' then redis.call('DEL', KEYS[2]) end
for index = 3, #KEYS do
  redis.call('ZADD', KEYS[index], ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[index], '-inf', ARGV[5])
  redis.call('PEXPIRE', KEYS[index], ARGV[2])
end
return 1`;

/** The client with the save script defined (ioredis `defineCommand`; the first argument is the number of keys). */
type ScriptedRedis = Redis & { gatewaySaveRecord(keyCount: number, ...keysThenArguments: Array<string | number>): Promise<number> };

/** Shared records in Redis. */
export class RedisGenerationRecords implements SharedGenerationRecords {
  private readonly redis: ScriptedRedis;

  /** @param retentionMs how long a record is kept after it was last saved, ms. */
  constructor(
    redis: Redis,
    private readonly retentionMs: number,
  ) {
    if (!('gatewaySaveRecord' in redis)) redis.defineCommand('gatewaySaveRecord', { lua: SAVE_SCRIPT });
    this.redis = redis as ScriptedRedis;
  }

  /**
   * Saves the record and its index entries with one script (one command, atomic); with `lease`, it
   * also sets the lease's key, and a final record's save deletes that key.
   */
  async save(record: GenerationRecord, lease?: SharedGenerationRecord['lease']): Promise<void> {
    const { lease: _previous, ...saved } = record as SharedGenerationRecord;
    const indexes = [GENERATION_INDEX_KEY, ...(record.owner === undefined ? [] : [GENERATION_OWNER_INDEX_PREFIX + record.owner])];
    await this.redis.gatewaySaveRecord(
      2 + indexes.length,
      GENERATION_RECORD_PREFIX + record.id,
      GENERATION_OWNER_PREFIX + record.id,
      ...indexes,
      JSON.stringify(lease ? { ...saved, lease } : saved),
      this.retentionMs,
      record.createdAt.getTime(),
      record.id,
      `(${Date.now() - this.retentionMs}`,
      lease?.owner ?? '',
      lease?.durationMs ?? 0,
      isFinalStatus(record.status) ? '1' : '0',
    );
  }

  async list(filter: GenerationFilter): Promise<GenerationPage> {
    const first = pageSizeOf(filter);
    const cursor = filter.after === undefined ? undefined : positionOf(filter.after);
    const index = filter.owner === undefined ? GENERATION_INDEX_KEY : GENERATION_OWNER_INDEX_PREFIX + filter.owner;
    const found: GenerationRecord[] = [];
    let max = cursor === undefined ? '+inf' : String(cursor.createdAtMs);
    let skip = 0;
    for (let scanned = 0; scanned < LIST_SCAN_LIMIT; ) {
      const entries = await this.redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', skip, LIST_BATCH);
      if (entries.length === 0) break;
      const positions: Array<{ id: string; createdAtMs: number }> = [];
      for (let at = 0; at < entries.length; at += 2) positions.push({ id: entries[at]!, createdAtMs: Number(entries[at + 1]) });
      scanned += positions.length;
      const wanted = positions.filter((position) => isAfter(position, cursor));
      const records = wanted.length === 0 ? [] : await this.redis.mget(wanted.map((position) => GENERATION_RECORD_PREFIX + position.id));
      for (const text of records) {
        // A record past its retention time can outlive its index entry by a moment: skipped.
        if (!text) continue;
        const record = revive(JSON.parse(text) as SerializedRecord);
        if (!matchesFilter(record, filter)) continue;
        found.push(record);
        if (found.length > first) return { records: found.slice(0, first), hasNextPage: true };
      }
      if (positions.length < LIST_BATCH) break;
      // The next batch: entries after the last one read (same score: skip those already read).
      const last = positions.at(-1)!;
      skip = positions.filter((position) => position.createdAtMs === last.createdAtMs).length + (String(last.createdAtMs) === max ? skip : 0);
      max = String(last.createdAtMs);
    }
    return { records: found, hasNextPage: false };
  }

  async load(generationId: string): Promise<SharedGenerationRecord | undefined> {
    const text = await this.redis.get(GENERATION_RECORD_PREFIX + generationId);
    if (!text) return undefined;
    return revive(JSON.parse(text) as SerializedRecord);
  }

  async delete(generationId: string): Promise<void> {
    await this.redis.del(GENERATION_RECORD_PREFIX + generationId);
  }
}

/** A record as JSON holds it: dates as ISO strings. */
type SerializedRecord = SharedGenerationRecord & { createdAt: string; finishedAt?: string };

/** The record with its dates revived. */
function revive(record: SerializedRecord): SharedGenerationRecord {
  return {
    ...record,
    createdAt: new Date(record.createdAt),
    ...(record.finishedAt !== undefined && { finishedAt: new Date(record.finishedAt) }),
  } as SharedGenerationRecord;
}
