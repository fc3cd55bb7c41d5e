/**
 * A bounded map whose entries expire: at most `maxEntries` (the least recently used go first) and
 * each for `ttlMs` after it was set. What the security layer keeps of database reads (virtual keys,
 * a key's token use) so that a request does not always reach the database.
 */

/** Settings of an {@link ExpiringCache}. */
export interface ExpiringCacheOptions {
  /** Most entries; setting one more forgets the least recently used. */
  maxEntries: number;
  /** How long an entry is served after it was set, ms. */
  ttlMs: number;
  /** The clock, ms since the epoch (injectable for tests). */
  now?: () => number;
}

/** See the module comment. A JavaScript `Map` keeps insertion order, which serves as recency order here. */
export class ExpiringCache<Key, Value> {
  private readonly entries = new Map<Key, { value: Value; expiresAt: number }>();
  private readonly now: () => number;

  constructor(private readonly options: ExpiringCacheOptions) {
    if (!(options.maxEntries > 0)) throw new Error('maxEntries must be greater than 0');
    this.now = options.now ?? Date.now;
  }

  /** The value set for `key` less than `ttlMs` ago, or undefined. */
  get(key: Key): Value | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.now()) return undefined;
    this.entries.set(key, entry); // now the most recently used
    return entry.value;
  }

  /** The value of `key` when it has not expired, without counting as a use. */
  peek(key: Key): Value | undefined {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.expiresAt > this.now() ? entry.value : undefined;
  }

  /** Sets `key` for `ttlMs` from now, forgetting the least recently used entry when full. */
  set(key: Key, value: Value): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
    if (this.entries.size > this.options.maxEntries) this.entries.delete(this.entries.keys().next().value as Key);
  }

  /** Forgets `key`. */
  delete(key: Key): void {
    this.entries.delete(key);
  }

  /** Entries held (expired ones included until they are read or pushed out). */
  get size(): number {
    return this.entries.size;
  }
}
