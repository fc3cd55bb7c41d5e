/**
 * Virtual keys' tokens per minute in Redis, shared by every instance on it (see
 * `security/token-rate-limiter.ts` for the limiter and the in-memory store).
 */
import type { Redis } from 'ioredis';
import type { TokenRateDecision, TokenRateStore } from '../security/token-rate-limiter.js';

/** The prefix of {@link RedisTokenRateStore}'s keys unless its constructor says otherwise. */
export const TOKEN_RATE_KEY_PREFIX = 'gateway:token-rate:';

/**
 * Check and count in one step. KEYS: the owner's sorted set (member = entry id, score = start
 * time, ms) and hash (entry id → tokens). ARGV: now, window start (entries at or before it have
 * left), tokens, limit, windowMs, entry id. Returns `{1}` (counted) or `{0, <start time of the
 * entry whose leaving makes room>}` — the rule of `retryAfterMs` in token-rate-limiter.ts.
 */
const RESERVE_SCRIPT = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
for i = 1, #expired do redis.call('HDEL', KEYS[2], expired[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local amounts = {}
local used = 0
for i = 1, #entries, 2 do
  local amount = tonumber(redis.call('HGET', KEYS[2], entries[i]) or '0')
  amounts[#amounts + 1] = amount
  used = used + amount
end
local tokens = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
if used + tokens > limit then
  local freed = 0
  for j = 1, #amounts do
    freed = freed + amounts[j]
    if used - freed + tokens <= limit then return {0, entries[2 * j]} end
  end
  return {0, ARGV[1]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[6])
redis.call('HSET', KEYS[2], ARGV[6], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {1}
`;

/** Replaces an entry's tokens while it is in the window. KEYS: sorted set, hash. ARGV: entry id, tokens. */
const SETTLE_SCRIPT = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
`;

interface TokenRateScripts {
  gatewayTokenRateReserve(windowKey: string, amountsKey: string, ...args: string[]): Promise<[number, string?]>;
  gatewayTokenRateSettle(windowKey: string, amountsKey: string, ...args: string[]): Promise<number>;
}

/**
 * A {@link TokenRateStore} in Redis: per owner a sorted set `gateway:token-rate:{owner}:window`
 * (entry ids by start time) and a hash `…:tokens` (their tokens), both expiring one window after
 * the newest start. Reservations are checked and counted in one Lua script, so two instances never
 * both take the last tokens.
 */
export class RedisTokenRateStore implements TokenRateStore {
  /** @param redis a command client (`createRedisState(...).commands`); errors (Redis unreachable) reject the calls. */
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string = TOKEN_RATE_KEY_PREFIX,
  ) {
    const client = redis as unknown as Record<string, unknown>;
    if (typeof client.gatewayTokenRateReserve !== 'function') redis.defineCommand('gatewayTokenRateReserve', { numberOfKeys: 2, lua: RESERVE_SCRIPT });
    if (typeof client.gatewayTokenRateSettle !== 'function') redis.defineCommand('gatewayTokenRateSettle', { numberOfKeys: 2, lua: SETTLE_SCRIPT });
  }

  /** The Redis keys of an owner: its window and its amounts. */
  keysOf(owner: string): [string, string] {
    return [`${this.keyPrefix}${owner}:window`, `${this.keyPrefix}${owner}:tokens`];
  }

  async reserve(owner: string, entryId: string, tokens: number, limit: number, windowMs: number, now: number): Promise<TokenRateDecision> {
    const [windowKey, amountsKey] = this.keysOf(owner);
    const [allowed, startedAt] = await this.scripts.gatewayTokenRateReserve(
      windowKey,
      amountsKey,
      String(now),
      String(now - windowMs),
      String(tokens),
      String(limit),
      String(windowMs),
      entryId,
    );
    return allowed === 1 ? { allowed: true } : { allowed: false, retryAfterMs: Math.max(0, Number(startedAt) + windowMs - now) };
  }

  async settle(owner: string, entryId: string, tokens: number): Promise<void> {
    const [windowKey, amountsKey] = this.keysOf(owner);
    await this.scripts.gatewayTokenRateSettle(windowKey, amountsKey, entryId, String(tokens));
  }

  async cancel(owner: string, entryId: string): Promise<void> {
    const [windowKey, amountsKey] = this.keysOf(owner);
    await this.redis.multi().zrem(windowKey, entryId).hdel(amountsKey, entryId).exec();
  }

  private get scripts(): TokenRateScripts {
    return this.redis as unknown as TokenRateScripts;
  }
}
