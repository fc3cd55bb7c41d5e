/**
 * The rate limiter's store in Redis, shared by every instance on it (see `security/rate-limiter.ts`
 * for the limiter and the in-memory store).
 */
import { randomUUID } from 'node:crypto';
import { Store, type Identity } from '@envelop/rate-limiter';
import type { Redis } from 'ioredis';
import type { AtomicRateLimitStore, RateLimitDecision } from '../security/rate-limiter.js';

/** The prefix of {@link RedisRateLimitStore}'s keys unless its constructor says otherwise. */
export const RATE_LIMIT_KEY_PREFIX = 'gateway:rate-limit:';

/**
 * The sliding window in one step. KEYS: the identity's sorted set (score = start time, ms).
 * ARGV: now, window start (now - windowMs: starts at or before it have left), maxPerWindow,
 * windowMs, a unique member. Returns `{1}` (counted) or `{0, <time of the start that frees a slot>}`.
 */
const CONSUME_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[3])
if count >= max then
  local entry = redis.call('ZRANGE', KEYS[1], count - max, count - max, 'WITHSCORES')
  return {0, entry[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1}
`;

/**
 * A `Store` in Redis, shared by every instance on it: one sorted set per identity,
 * `gateway:rate-limit:{contextIdentity}:{fieldIdentity}` (members are start times, ms), expiring one
 * window after its newest start. Starts are counted with one Lua script ({@link AtomicRateLimitStore}),
 * so two instances never both take the last slot. Used instead of the library's `RedisStore`, which
 * reads the list, then writes it back whole: starts of one caller counted at once overwrite each
 * other's timestamp (10 concurrent starts on two instances against a budget of 3 all passed with it).
 */
export class RedisRateLimitStore extends Store implements AtomicRateLimitStore {
  /** @param redis a command client (`createRedisState(...).commands`); errors (Redis unreachable) reject the calls. */
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string = RATE_LIMIT_KEY_PREFIX,
  ) {
    super();
    const client = redis as unknown as Record<string, unknown>;
    if (typeof client.gatewayRateLimitConsume !== 'function') redis.defineCommand('gatewayRateLimitConsume', { numberOfKeys: 1, lua: CONSUME_SCRIPT });
  }

  /** The Redis key of an identity. */
  keyOf(identity: Identity): string {
    return `${this.keyPrefix}${identity.contextIdentity}:${identity.fieldIdentity}`;
  }

  async consumeForIdentity(identity: Identity, maxPerWindow: number, windowMs: number, now: number): Promise<RateLimitDecision> {
    const scripts = this.redis as unknown as { gatewayRateLimitConsume(key: string, ...args: string[]): Promise<[number, string?]> };
    const [allowed, oldest] = await scripts.gatewayRateLimitConsume(
      this.keyOf(identity),
      String(now),
      String(now - windowMs),
      String(maxPerWindow),
      String(windowMs),
      `${now}:${randomUUID()}`,
    );
    return allowed === 1 ? { allowed: true } : { allowed: false, retryAfterMs: Number(oldest) + windowMs - now };
  }

  /** The identity's start times (ms since the epoch), oldest first. */
  async getForIdentity(identity: Identity): Promise<readonly number[]> {
    const entries = await this.redis.zrange(this.keyOf(identity), 0, -1, 'WITHSCORES');
    return entries.filter((_, index) => index % 2 === 1).map(Number);
  }

  /**
   * Replaces the identity's start times; the key expires `windowMs` after the newest (none: the key is deleted).
   * @throws the Redis error of the transaction's first failed command.
   */
  async setForIdentity(identity: Identity, timestamps: readonly number[], windowMs = 60_000): Promise<void> {
    const key = this.keyOf(identity);
    const transaction = this.redis.multi().del(key);
    if (timestamps.length > 0) {
      transaction.zadd(key, ...timestamps.flatMap((timestamp, index) => [timestamp, `${timestamp}:${index}:${randomUUID()}`]));
      transaction.pexpireat(key, Math.max(...timestamps) + windowMs);
    }
    const failed = (await transaction.exec())?.find(([error]) => error !== null);
    if (failed) throw failed[0];
  }
}
