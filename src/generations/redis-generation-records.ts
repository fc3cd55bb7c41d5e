/**
 * Generation records shared through Redis, so any instance can answer `generation(id)`, check a
 * subscription, or ask for a cancellation of a generation another instance runs. Each record is one
 * JSON string at `gateway:generation:{id}`, written when the generation starts and when it ends,
 * and kept for the retention time. The running instance's own copy stays authoritative while it runs.
 * A generation run under an owner lease (see generation-leases.ts) is saved with `lease` while it
 * runs, so other instances know that a missing lease means its instance is gone.
 */
import type { Redis } from 'ioredis';
import type { GenerationRecord } from './generation-records.js';

/** Key prefix of the records. */
export const GENERATION_RECORD_PREFIX = 'gateway:generation:';

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
}

/** Shared records in Redis. */
export class RedisGenerationRecords implements SharedGenerationRecords {
  /** @param retentionMs how long a record is kept after it was last saved, ms. */
  constructor(
    private readonly redis: Redis,
    private readonly retentionMs: number,
  ) {}

  async save(record: GenerationRecord, lease?: SharedGenerationRecord['lease']): Promise<void> {
    const { lease: _previous, ...saved } = record as SharedGenerationRecord;
    await this.redis.set(GENERATION_RECORD_PREFIX + record.id, JSON.stringify(lease ? { ...saved, lease } : saved), 'PX', this.retentionMs);
  }

  async load(generationId: string): Promise<SharedGenerationRecord | undefined> {
    const text = await this.redis.get(GENERATION_RECORD_PREFIX + generationId);
    if (!text) return undefined;
    const record = JSON.parse(text) as SharedGenerationRecord & { createdAt: string; finishedAt?: string };
    return {
      ...record,
      createdAt: new Date(record.createdAt),
      ...(record.finishedAt !== undefined && { finishedAt: new Date(record.finishedAt) }),
    } as SharedGenerationRecord;
  }

  async delete(generationId: string): Promise<void> {
    await this.redis.del(GENERATION_RECORD_PREFIX + generationId);
  }
}
