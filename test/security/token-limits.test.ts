/**
 * The parts of a virtual key's token limits that need no server: UTC budget periods, the token
 * estimate of a request, the in-memory tokens-per-minute window (the time until tokens fit, its
 * bound), the limiter counting on this instance while a shared store fails, budgets that two
 * concurrent starts cannot both pass, and the bounded cache of keys.
 */
import { describe, expect, it } from 'vitest';
import { budgetPeriodReset, budgetPeriodStart } from '../../src/security/budget-periods.js';
import { SecurityError } from '../../src/security/security-error.js';
import { TokenAccounting } from '../../src/security/token-accounting.js';
import { TokenBudgetLedger } from '../../src/security/token-budget-ledger.js';
import { MemoryTokenRateStore, TokenRateLimiter, type TokenRateStore } from '../../src/security/token-rate-limiter.js';
import { estimateChatTokens } from '../../src/security/usage-estimate.js';

describe('budget periods (UTC)', () => {
  const now = new Date('2026-12-31T23:30:00.000Z'); // a Thursday

  it('start at midnight, on Monday, on the first of the month, or the epoch', () => {
    expect(budgetPeriodStart('day', now).toISOString()).toBe('2026-12-31T00:00:00.000Z');
    expect(budgetPeriodStart('week', now).toISOString()).toBe('2026-12-28T00:00:00.000Z');
    expect(budgetPeriodStart('week', new Date('2027-01-03T12:00:00.000Z')).toISOString()).toBe('2026-12-28T00:00:00.000Z'); // a Sunday
    expect(budgetPeriodStart('week', new Date('2027-01-04T00:00:00.000Z')).toISOString()).toBe('2027-01-04T00:00:00.000Z'); // a Monday
    expect(budgetPeriodStart('month', now).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(budgetPeriodStart('total', now).getTime()).toBe(0);
  });

  it('reset at the start of the next period, across the year; never for total', () => {
    expect(budgetPeriodReset('day', now)!.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(budgetPeriodReset('week', now)!.toISOString()).toBe('2027-01-04T00:00:00.000Z');
    expect(budgetPeriodReset('month', now)!.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(budgetPeriodReset('month', new Date('2027-02-10T00:00:00.000Z'))!.toISOString()).toBe('2027-03-01T00:00:00.000Z');
    expect(budgetPeriodReset('total', now)).toBeUndefined();
  });
});

describe('the token estimate of a chat request', () => {
  it('is a token per 4 characters of the messages plus maxTokens, else the default', () => {
    const messages = [
      { role: 'system' as const, content: 'Be brief.' }, // 9
      { role: 'user' as const, content: 'Hello', parts: [{ type: 'text' as const, text: 'abc' }] }, // 8
    ];
    expect(estimateChatTokens({ messages, maxTokens: 10 }, 512)).toBe(Math.ceil(17 / 4) + 10);
    expect(estimateChatTokens({ messages }, 512)).toBe(5 + 512);
    expect(estimateChatTokens({ messages: 'not a list' as never, maxTokens: -3 }, 7)).toBe(7);
  });
});

describe('tokens per minute in memory', () => {
  it('refuses past the limit with the time until the oldest tokens leave, and settles and cancels entries', async () => {
    const store = new MemoryTokenRateStore();
    expect(await store.reserve('key:a', '1', 8, 20, 60_000, 0)).toEqual({ allowed: true });
    expect(await store.reserve('key:a', '2', 8, 20, 60_000, 1000)).toEqual({ allowed: true });
    expect(await store.reserve('key:a', '3', 8, 20, 60_000, 2000)).toEqual({ allowed: false, retryAfterMs: 58_000 });
    await store.settle('key:a', '1', 1);
    expect(await store.reserve('key:a', '3', 8, 20, 60_000, 2000)).toEqual({ allowed: true });
    await store.cancel('key:a', '3');
    expect(await store.reserve('key:a', '4', 11, 20, 60_000, 3000)).toEqual({ allowed: true });
    expect(await store.reserve('key:b', '1', 20, 20, 60_000, 3000)).toEqual({ allowed: true }); // owners are apart
  });

  it('forgets owners whose window emptied, and keeps at most maxOwners', async () => {
    const store = new MemoryTokenRateStore(2);
    for (const owner of ['a', 'b', 'c']) await store.reserve(owner, '1', 1, 10, 1000, 0);
    expect(store.size).toBe(2);
    await store.reserve('a', '2', 1, 10, 1000, 5000); // its old entry left the window
    await store.cancel('a', '2');
    expect(store.size).toBe(1);
  });

  it('caps a request larger than the limit at the limit, so it runs once the window is empty', async () => {
    const limiter = new TokenRateLimiter({ windowMs: 60_000, now: () => 0 });
    expect(await limiter.reserve('key:a', '1', 500, 100)).toEqual({ allowed: true });
    expect(await limiter.reserve('key:a', '2', 1, 100)).toEqual({ allowed: false, retryAfterMs: 60_000 });
  });

  it('counts on this instance while a shared store fails, and says so once', async () => {
    const failing: TokenRateStore = {
      reserve: () => Promise.reject(new Error('Redis is away')),
      settle: () => Promise.reject(new Error('Redis is away')),
      cancel: () => Promise.reject(new Error('Redis is away')),
    };
    const warnings: string[] = [];
    const limiter = new TokenRateLimiter({ store: failing, windowMs: 60_000, now: () => 0, logger: { warn: (_object: unknown, message: string) => void warnings.push(message), info: () => {} } as never });
    expect(await limiter.reserve('key:a', '1', 15, 20)).toEqual({ allowed: true });
    expect((await limiter.reserve('key:a', '2', 15, 20)).allowed).toBe(false);
    expect(warnings).toHaveLength(1);
  });
});

describe('budgets under concurrent starts', () => {
  it('never admits two starts that together exceed the budget', async () => {
    let release!: () => void;
    const slowSum = new Promise<number>((resolve) => (release = () => resolve(0)));
    const ledger = new TokenBudgetLedger({ source: { tokensSince: () => slowSum }, cacheTtlMs: 1000, maxCachedSums: 10 });
    const accounting = new TokenAccounting({ ledger, rateLimiter: new TokenRateLimiter({ windowMs: 60_000 }) });
    const limits = { budgetTokens: 30, budgetPeriod: 'day' as const };
    const starts = [accounting.reserve('key:a', 20, limits), accounting.reserve('key:a', 20, limits)];
    release();
    const outcomes = await Promise.allSettled(starts);
    const admitted = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(admitted.length).toBeLessThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0]!.reason).toBeInstanceOf(SecurityError);
    expect(refused[0]!.reason.code).toBe('BUDGET_EXCEEDED');
    expect(refused[0]!.reason.message).toMatch(/would be exceeded: this request is estimated at 20 tokens/);
  });
});
