/**
 * The `api_keys` table (see `database-schema.ts`): virtual API keys, each kept as the SHA-256 of the
 * key (the key itself is shown once, when it is made, and never stored), its name, limits, expiry
 * and revocation time. The security layer makes keys and checks them (`security/virtual-keys.ts`);
 * this module only reads and writes rows.
 */
import { and, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import { apiKeys, type BudgetPeriod } from './database-schema.js';
import type { DrizzleDatabase } from './open-database.js';

/**
 * What a virtual key may do; an absent field is no limit of the key's own (requests per minute and
 * running generations then follow the server's `RATE_LIMIT_PER_MINUTE` and
 * `MAX_CONCURRENT_GENERATIONS_PER_KEY`). Counts are whole numbers; `0` turns a count off.
 */
export interface ApiKeyLimits {
  /** Generation starts per minute (sliding window). */
  requestsPerMinute?: number;
  /** Prompt plus completion tokens per minute (sliding window). */
  tokensPerMinute?: number;
  /** Generations running at once. */
  maxConcurrentGenerations?: number;
  /** Prompt plus completion tokens per {@link budgetPeriod}; given together with it. */
  budgetTokens?: number;
  budgetPeriod?: BudgetPeriod;
  /** Model ids, `provider:model` or aliases the key may use; absent = any. */
  allowedModels?: string[];
  /** Provider ids the key may use; absent = any. */
  allowedProviders?: string[];
}

/** One virtual key as stored. */
export interface ApiKeyRecord {
  /** `key_` and a random suffix; callers authenticated by it are `key:<id>`. */
  id: string;
  name: string;
  /** Lower-case hex SHA-256 of the key. */
  keyHash: string;
  /** The key's first characters, to tell keys apart in lists (never enough to use it). */
  keyPrefix: string;
  createdAt: Date;
  updatedAt: Date;
  expiresAt?: Date;
  revokedAt?: Date;
  limits: ApiKeyLimits;
}

/** What {@link ApiKeyStore.update} changes: a present field is set, `null` clears it; absent fields stay. */
export interface ApiKeyChanges {
  name?: string;
  expiresAt?: Date | null;
  limits?: { [Field in keyof ApiKeyLimits]?: ApiKeyLimits[Field] | null };
}

/** A page of {@link ApiKeyStore.list}. */
export interface ApiKeyPage {
  records: ApiKeyRecord[];
  hasNextPage: boolean;
}

/** The position of a key in {@link ApiKeyStore.list}'s order (newest first), for the next page. */
export interface ApiKeyPosition {
  createdAt: Date;
  id: string;
}

type Row = typeof apiKeys.$inferSelect;

/** Reads and writes {@link ApiKeyRecord}s. Every method throws the driver's error when the database cannot be reached. */
export class ApiKeyStore {
  constructor(private readonly db: DrizzleDatabase) {}

  /**
   * Stores a new key.
   * @throws the driver's error, e.g. a unique violation when `id` or `keyHash` is taken.
   */
  async insert(record: ApiKeyRecord): Promise<void> {
    await this.db.insert(apiKeys).values({
      id: record.id,
      name: record.name,
      keyHash: record.keyHash,
      keyPrefix: record.keyPrefix,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      expiresAt: record.expiresAt ?? null,
      revokedAt: record.revokedAt ?? null,
      ...limitColumns(record.limits),
    });
  }

  /** The key whose SHA-256 is `keyHash` (lower-case hex), or undefined. */
  async findByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).limit(1);
    return row && toRecord(row);
  }

  /** The key with this id, or undefined. */
  async findById(id: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.db.select().from(apiKeys).where(eq(apiKeys.id, id)).limit(1);
    return row && toRecord(row);
  }

  /** The keys with these ids that exist (in no particular order); at most 1000 ids per call. */
  async findByIds(ids: readonly string[]): Promise<ApiKeyRecord[]> {
    if (ids.length === 0) return [];
    if (ids.length > 1000) throw new Error('findByIds takes at most 1000 ids');
    const rows = await this.db.select().from(apiKeys).where(inArray(apiKeys.id, [...ids]));
    return rows.map(toRecord);
  }

  /**
   * Applies `changes` (and sets `updatedAt` to `now`).
   * @returns the key as it is now, or undefined when there is no key `id`.
   */
  async update(id: string, changes: ApiKeyChanges, now: Date): Promise<ApiKeyRecord | undefined> {
    const limits = changes.limits ?? {};
    const [row] = await this.db
      .update(apiKeys)
      .set({
        updatedAt: now,
        ...(changes.name !== undefined && { name: changes.name }),
        ...(changes.expiresAt !== undefined && { expiresAt: changes.expiresAt }),
        ...(limits.requestsPerMinute !== undefined && { requestsPerMinute: limits.requestsPerMinute }),
        ...(limits.tokensPerMinute !== undefined && { tokensPerMinute: limits.tokensPerMinute }),
        ...(limits.maxConcurrentGenerations !== undefined && { maxConcurrentGenerations: limits.maxConcurrentGenerations }),
        ...(limits.budgetTokens !== undefined && { budgetTokens: limits.budgetTokens }),
        ...(limits.budgetPeriod !== undefined && { budgetPeriod: limits.budgetPeriod }),
        ...(limits.allowedModels !== undefined && { allowedModels: limits.allowedModels }),
        ...(limits.allowedProviders !== undefined && { allowedProviders: limits.allowedProviders }),
      })
      .where(eq(apiKeys.id, id))
      .returning();
    return row && toRecord(row);
  }

  /**
   * Marks the key revoked at `now`; a key revoked before keeps its first revocation time.
   * @returns the key as it is now, or undefined when there is no key `id`.
   */
  async revoke(id: string, now: Date): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.db
      .update(apiKeys)
      .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, ${now.toISOString()}::timestamptz)`, updatedAt: now })
      .where(eq(apiKeys.id, id))
      .returning();
    return row && toRecord(row);
  }

  /**
   * Keys newest first (by creation time, then id), revoked and expired ones included.
   * @param first page size (the caller bounds it).
   * @param after the position of the last key of the previous page; absent = from the newest.
   */
  async list(first: number, after?: ApiKeyPosition): Promise<ApiKeyPage> {
    const rows = await this.db
      .select()
      .from(apiKeys)
      .where(after && or(lt(apiKeys.createdAt, after.createdAt), and(eq(apiKeys.createdAt, after.createdAt), lt(apiKeys.id, after.id))))
      .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
      .limit(first + 1);
    return { records: rows.slice(0, first).map(toRecord), hasNextPage: rows.length > first };
  }

  /** Whether any key was ever made (revoked and expired ones count). */
  async hasAny(): Promise<boolean> {
    const [row] = await this.db.select({ id: apiKeys.id }).from(apiKeys).limit(1);
    return row !== undefined;
  }
}

/** The limit columns of `limits` (absent limits as SQL null). */
function limitColumns(limits: ApiKeyLimits) {
  return {
    requestsPerMinute: limits.requestsPerMinute ?? null,
    tokensPerMinute: limits.tokensPerMinute ?? null,
    maxConcurrentGenerations: limits.maxConcurrentGenerations ?? null,
    budgetTokens: limits.budgetTokens ?? null,
    budgetPeriod: limits.budgetPeriod ?? null,
    allowedModels: limits.allowedModels ?? null,
    allowedProviders: limits.allowedProviders ?? null,
  };
}

function toRecord(row: Row): ApiKeyRecord {
  const limits: ApiKeyLimits = {
    ...(row.requestsPerMinute !== null && { requestsPerMinute: row.requestsPerMinute }),
    ...(row.tokensPerMinute !== null && { tokensPerMinute: row.tokensPerMinute }),
    ...(row.maxConcurrentGenerations !== null && { maxConcurrentGenerations: row.maxConcurrentGenerations }),
    ...(row.budgetTokens !== null && { budgetTokens: row.budgetTokens }),
    ...(row.budgetPeriod !== null && { budgetPeriod: row.budgetPeriod }),
    ...(row.allowedModels !== null && { allowedModels: row.allowedModels }),
    ...(row.allowedProviders !== null && { allowedProviders: row.allowedProviders }),
  };
  return {
    id: row.id,
    name: row.name,
    keyHash: row.keyHash,
    keyPrefix: row.keyPrefix,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    ...(row.expiresAt !== null && { expiresAt: row.expiresAt }),
    ...(row.revokedAt !== null && { revokedAt: row.revokedAt }),
    limits,
  };
}
