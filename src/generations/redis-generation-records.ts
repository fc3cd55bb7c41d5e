/**
 * Generation records shared through Redis, so any instance can answer `generation(id)`, check a
 * subscription, or ask for a cancellation of a generation another instance runs. Each record is one
 * JSON string at `gateway:generation:{id}`, written when the generation starts and when it ends,
 * and kept for the retention time. The running instance's own copy stays authoritative while it runs.
 */
import type { Redis } from 'ioredis';
import type { GenerationRecord } from './generation-records.js';

/** Key prefix of the records. */
export const GENERATION_RECORD_PREFIX = 'gateway:generation:';

/** Where records are shared between instances. */
export interface SharedGenerationRecords {
  /** Stores the record as it is now. */
  save(record: GenerationRecord): Promise<void>;
  /** The record as last saved (dates revived), or undefined. */
  load(generationId: string): Promise<GenerationRecord | undefined>;
  delete(generationId: string): Promise<void>;
}

/** Shared records in Redis. */
export class RedisGenerationRecords implements SharedGenerationRecords {
  /** @param retentionMs how long a record is kept after it was last saved, ms. */
  constructor(
    private readonly redis: Redis,
    private readonly retentionMs: number,
  ) {}

  async save(record: GenerationRecord): Promise<void> {
    await this.redis.set(GENERATION_RECORD_PREFIX + record.id, JSON.stringify(record), 'PX', this.retentionMs);
  }

  async load(generationId: string): Promise<GenerationRecord | undefined> {
    const text = await this.redis.get(GENERATION_RECORD_PREFIX + generationId);
    if (!text) return undefined;
    const record = JSON.parse(text) as GenerationRecord & { createdAt: string; finishedAt?: string };
    return {
      ...record,
      createdAt: new Date(record.createdAt),
      ...(record.finishedAt !== undefined && { finishedAt: new Date(record.finishedAt) }),
    } as GenerationRecord;
  }

  async delete(generationId: string): Promise<void> {
    await this.redis.del(GENERATION_RECORD_PREFIX + generationId);
  }
}
