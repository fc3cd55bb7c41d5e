/**
 * Virtual API keys: made, changed, revoked and listed by the admin operations, stored in the
 * database (`storage/api-key-store.ts`) as their SHA-256 only, and looked up when a caller presents
 * one. Lookups are cached in memory (bounded, `API_KEY_CACHE_TTL_MS`), so a request does not always
 * reach the database: a change made here (a revocation) applies here at once, one made on another
 * instance within the cache's time to live.
 *
 * A key is `sk-gw-` and 43 characters of base64url (32 random bytes); it is shown once, when made.
 * A presented key is found by its SHA-256, an index lookup: the time it takes reveals nothing an
 * attacker could use without a preimage of a 256-bit random value (the master key and static keys,
 * compared in memory, use constant-time comparison).
 */
import { randomBytes } from 'node:crypto';
import { hashApiKey } from './api-keys.js';
import type { ApiKeyChanges, ApiKeyPage, ApiKeyPosition, ApiKeyRecord, ApiKeyStore } from '../storage/api-key-store.js';
import { assertBudgetComplete, parseApiKeyChanges, parseNewApiKey, withChanges } from './api-key-input.js';
import { LRUCache } from 'lru-cache';

/** What every virtual key starts with; keys without it are never looked up in the database. */
export const VIRTUAL_KEY_PREFIX = 'sk-gw-';

/** Characters of a key kept as its `keyPrefix` (the prefix and 6 random characters, 36 bits). */
const KEY_PREFIX_LENGTH = VIRTUAL_KEY_PREFIX.length + 6;

/** Whether a key is usable: neither revoked nor past its expiry. */
export type ApiKeyStatus = 'active' | 'expired' | 'revoked';

/** The status of `record` at `now`. */
export function apiKeyStatus(record: ApiKeyRecord, now: Date = new Date()): ApiKeyStatus {
  if (record.revokedAt !== undefined) return 'revoked';
  if (record.expiresAt !== undefined && record.expiresAt.getTime() <= now.getTime()) return 'expired';
  return 'active';
}

/** Settings of {@link VirtualKeys}. */
export interface VirtualKeysOptions {
  /** How long a key read from the database is trusted, ms (`API_KEY_CACHE_TTL_MS`). */
  cacheTtlMs: number;
  /** Most keys (and unknown keys) remembered (`API_KEY_CACHE_MAX`). */
  cacheMaxEntries: number;
  /** The clock, ms since the epoch (injectable for tests). */
  now?: () => number;
}

/** A key made by {@link VirtualKeys.create}: the key itself (shown this once) and its record. */
export interface CreatedApiKey {
  key: string;
  apiKey: ApiKeyRecord;
}

/** What the cache holds for a digest that no key has (lru-cache keeps no nullish values). */
const NO_KEY = Symbol('no key');

/** Makes, changes, revokes, lists and looks up virtual keys; see the module comment. */
export class VirtualKeys {
  /** `hash:<digest>` → the key, or {@link NO_KEY} for a digest no key has; `id:<id>` → the key. */
  private readonly cache: LRUCache<string, ApiKeyRecord | typeof NO_KEY>;
  /** Lookups in flight by cache key, so a burst of requests with one key reads it once. */
  private readonly reading = new Map<string, Promise<ApiKeyRecord | undefined>>();
  private readonly listeners = new Set<(record: ApiKeyRecord) => void>();
  private readonly now: () => number;
  /** Whether a key was seen to exist (then it stays true), and when that was last asked. */
  private knownToExist = false;
  private existenceCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: ApiKeyStore,
    private readonly options: VirtualKeysOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.cache = new LRUCache({ max: options.cacheMaxEntries, ttl: options.cacheTtlMs, ttlResolution: 0, perf: { now: this.now } });
  }

  /** How long a read is trusted, ms. */
  get cacheTtlMs(): number {
    return this.options.cacheTtlMs;
  }

  /**
   * Whether any virtual key was ever made (revoked and expired ones count, so revoking every key
   * never opens the gateway). Once true it stays true; while false it is read again at most once per
   * `cacheTtlMs` (a key made on another instance). When the database cannot be read, the last answer stands.
   */
  async anyExist(): Promise<boolean> {
    if (this.knownToExist || this.now() - this.existenceCheckedAt < this.options.cacheTtlMs) return this.knownToExist;
    this.existenceCheckedAt = this.now();
    try {
      if (await this.store.hasAny()) this.knownToExist = true;
    } catch {
      // the last answer stands until the database answers
    }
    return this.knownToExist;
  }

  /** Whether `key` has the form of a virtual key (only those are looked up). */
  static isVirtualKey(key: string): boolean {
    return key.startsWith(VIRTUAL_KEY_PREFIX);
  }

  /**
   * The virtual key `key` (whatever its status), or undefined when no key has its SHA-256 or it
   * does not have a virtual key's form. Answers from the cache when it can.
   * @throws the driver's error when the database cannot be read.
   */
  findByKey(key: string): Promise<ApiKeyRecord | undefined> {
    if (!VirtualKeys.isVirtualKey(key)) return Promise.resolve(undefined);
    const keyHash = hashApiKey(key);
    return this.read(`hash:${keyHash}`, () => this.store.findByHash(keyHash));
  }

  /**
   * The virtual key with this id, or undefined. Answers from the cache when it can.
   * @throws the driver's error when the database cannot be read.
   */
  findById(id: string): Promise<ApiKeyRecord | undefined> {
    return this.read(`id:${id}`, () => this.store.findById(id));
  }

  /**
   * The keys with these ids as the database has them now (no cache; the cache is refreshed), for the
   * sweep of open sockets. Ids without a key are left out.
   * @throws the driver's error when the database cannot be read.
   */
  async readAgain(ids: readonly string[]): Promise<ApiKeyRecord[]> {
    const records: ApiKeyRecord[] = [];
    for (let start = 0; start < ids.length; start += 1000) records.push(...(await this.store.findByIds(ids.slice(start, start + 1000))));
    for (const record of records) this.remember(record);
    return records;
  }

  /**
   * Makes a key.
   * @param input `{ name, expiresAt?, limits? }` as the admin operation gives it.
   * @throws GatewayError `BAD_USER_INPUT` naming a bad field; the driver's error when the database cannot be written.
   */
  async create(input: unknown): Promise<CreatedApiKey> {
    const now = new Date(this.now());
    const values = parseNewApiKey(input, now);
    const key = `${VIRTUAL_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const record: ApiKeyRecord = {
      id: `key_${randomBytes(12).toString('base64url')}`,
      name: values.name,
      keyHash: hashApiKey(key),
      keyPrefix: key.slice(0, KEY_PREFIX_LENGTH),
      createdAt: now,
      updatedAt: now,
      ...(values.expiresAt && { expiresAt: values.expiresAt }),
      limits: values.limits,
    };
    await this.store.insert(record);
    this.knownToExist = true;
    this.remember(record);
    return { key, apiKey: record };
  }

  /**
   * Changes a key's name, expiry or limits (see `parseApiKeyChanges`); applies here at once.
   * @returns the key as it is now, or undefined when there is no key `id`.
   * @throws GatewayError `BAD_USER_INPUT` naming a bad field (also a budget left without its amount
   *   or period); the driver's error when the database cannot be reached.
   */
  async update(id: string, input: unknown): Promise<ApiKeyRecord | undefined> {
    const changes: ApiKeyChanges = parseApiKeyChanges(input);
    if (changes.limits) {
      const current = await this.store.findById(id);
      if (!current) return undefined;
      assertBudgetComplete(withChanges(current.limits, changes.limits));
    }
    return this.changed(await this.store.update(id, changes, new Date(this.now())));
  }

  /**
   * Revokes a key (a key revoked before keeps its first revocation time); applies here at once, and
   * the listeners close its sockets.
   * @returns the key as it is now, or undefined when there is no key `id`.
   * @throws the driver's error when the database cannot be written.
   */
  async revoke(id: string): Promise<ApiKeyRecord | undefined> {
    return this.changed(await this.store.revoke(id, new Date(this.now())));
  }

  /**
   * Keys newest first, revoked and expired ones included.
   * @throws the driver's error when the database cannot be read.
   */
  list(first: number, after?: ApiKeyPosition): Promise<ApiKeyPage> {
    return this.store.list(first, after);
  }

  /** Calls `listener` with every key this instance changed (updated or revoked), after the change. */
  onChange(listener: (record: ApiKeyRecord) => void): void {
    this.listeners.add(listener);
  }

  private changed(record: ApiKeyRecord | undefined): ApiKeyRecord | undefined {
    if (!record) return undefined;
    this.remember(record);
    for (const listener of this.listeners) listener(record);
    return record;
  }

  /**
   * Caches `record` under its hash and its id, unless the cache holds a newer version of it (a read
   * that started before a revocation here ends after it: the revocation stays).
   */
  private remember(record: ApiKeyRecord): void {
    const cached = this.cache.peek(`id:${record.id}`);
    if (cached && cached !== NO_KEY && cached.updatedAt.getTime() > record.updatedAt.getTime()) return;
    this.cache.set(`hash:${record.keyHash}`, record);
    this.cache.set(`id:${record.id}`, record);
  }

  private async read(cacheKey: string, load: () => Promise<ApiKeyRecord | undefined>): Promise<ApiKeyRecord | undefined> {
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) return cached === NO_KEY ? undefined : cached;
    const pending = this.reading.get(cacheKey);
    if (pending) return pending;
    const reading = load()
      .then((record) => {
        if (record) this.remember(record);
        else if (cacheKey.startsWith('hash:')) this.cache.set(cacheKey, NO_KEY);
        return record;
      })
      .finally(() => this.reading.delete(cacheKey));
    this.reading.set(cacheKey, reading);
    return reading;
  }
}
