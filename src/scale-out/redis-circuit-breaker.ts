/**
 * The circuit breaker shared by every instance on one Redis (`REDIS_URL`): the same rules as the
 * in-memory {@link CircuitBreaker} (see `circuit-breaker.ts`), with each provider's circuit in one
 * Redis hash, so failures seen by any instance add up, a circuit opens (or closes) for all of them,
 * and the half-open trial is one request cluster-wide.
 *
 * Keys: `gateway:breaker:{providerId}`, a hash of `failures` (counted failures in a row),
 * `openUntil` (ms since the epoch; `0` = closed), `trialUntil` (the trial slot: ms since the epoch
 * until which one instance's trial holds it; `0` = free) and `lastCode`, `lastMessage`,
 * `lastProvider` (the last counted failure). Every change runs as one Lua script (ioredis
 * `defineCommand`, EVALSHA), so two instances cannot both take the trial slot or lose each other's
 * failures. A key expires `idleExpiryMs` after its last change (counted from the end of its open
 * period), so nothing leaks; a success deletes it (see `recordSuccess`).
 *
 * Times are the instances' clocks (`now`), compared in Redis: keep the clocks in sync (NTP); a skew
 * shifts when a circuit half-opens by as much.
 *
 * Redis unreachable (connection not ready, an error, or no answer within `redisTimeoutMs`): every
 * method answers from this instance's own in-memory breaker, which records every outcome all the
 * time, so generation goes on with the local view. One warning is logged per outage, and one info
 * line when Redis answers again; from then on the shared state is used again (outcomes seen during
 * the outage are not replayed into it).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../operations/logger.js';
import {
  CircuitBreaker,
  countsAgainstProvider,
  describeOpenCircuit,
  type CircuitBreakerOptions,
  type CircuitFailure,
  type CircuitState,
  type ProviderCircuitBreaker,
} from '../providers/circuit-breaker.js';

/** The prefix of the breaker's keys unless {@link RedisCircuitBreakerOptions.keyPrefix} says otherwise. */
export const BREAKER_KEY_PREFIX = 'gateway:breaker:';

/** Settings of a {@link RedisCircuitBreaker}: those of the in-memory breaker, plus the Redis ones. Durations in ms. */
export interface RedisCircuitBreakerOptions extends CircuitBreakerOptions {
  /** Prefix of the keys; default {@link BREAKER_KEY_PREFIX}. */
  keyPrefix?: string;
  /**
   * Longest time one trial request holds the cluster's trial slot; after it another trial may start
   * (so an instance that died during its trial blocks the provider no longer). Default
   * `max(cooldownMs, 60 000)`.
   */
  trialLeaseMs?: number;
  /** How long a provider's state is kept after its last change (after its open period ends); default `max(cooldownMs, 3 600 000)`. */
  idleExpiryMs?: number;
  /** Longest wait for one Redis answer before answering from the local view; default 500. */
  redisTimeoutMs?: number;
  /** Receives one `warn` when Redis becomes unreachable and one `info` when it answers again. */
  logger?: Pick<Logger, 'warn' | 'info'>;
}

/**
 * `tryAcquire`. KEYS: circuit. ARGV: now, trial slot end (now + lease). Returns 2 (go; there is no
 * circuit state at all), 1 (go) or 0 (skip). Closed: go. Open and before `openUntil`: skip. Past it
 * (half-open): go only when the trial slot is free (or its lease ran out), taking it.
 */
const ACQUIRE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 2 end
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if openUntil == 0 then return 1 end
local now = tonumber(ARGV[1])
if now < openUntil then return 0 end
local trialUntil = tonumber(redis.call('HGET', KEYS[1], 'trialUntil') or '0')
if trialUntil > now then return 0 end
redis.call('HSET', KEYS[1], 'trialUntil', ARGV[2])
return 1
`;

/**
 * A counted failure. KEYS: circuit. ARGV: now, cool-down end (now + cooldownMs), Retry-After end
 * (`0` = none), failure threshold, last code, last message, last provider (`''` = none), idle expiry.
 * The failure of a trial (a trial slot was taken) or the threshold opens until the cool-down end; a
 * Retry-After end later than that wins. Ends any trial. Returns the number of failures in a row.
 */
const FAILURE_SCRIPT = `
local key = KEYS[1]
local now = tonumber(ARGV[1])
local wasTrial = tonumber(redis.call('HGET', key, 'trialUntil') or '0') > 0
local failures = redis.call('HINCRBY', key, 'failures', 1)
local openUntil = redis.call('HGET', key, 'openUntil') or '0'
if wasTrial or failures >= tonumber(ARGV[4]) then openUntil = ARGV[2] end
if tonumber(ARGV[3]) > tonumber(openUntil) then openUntil = ARGV[3] end
redis.call('HSET', key, 'openUntil', openUntil, 'trialUntil', '0', 'lastCode', ARGV[5], 'lastMessage', ARGV[6], 'lastProvider', ARGV[7])
local openFor = tonumber(openUntil) - now
if openFor < 0 then openFor = 0 end
redis.call('PEXPIRE', key, math.floor(openFor + tonumber(ARGV[8])))
return failures
`;

/** A failure that does not count (not the provider's fault, or a cancellation). KEYS: circuit. Frees the trial slot of an existing circuit. */
const NEUTRAL_FAILURE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'trialUntil', '0') end
return 0
`;

/** The scripts as ioredis client methods (`defineCommand`), named so they cannot clash with other users of the client. */
const SCRIPTS = {
  gatewayBreakerAcquire: ACQUIRE_SCRIPT,
  gatewayBreakerFailure: FAILURE_SCRIPT,
  gatewayBreakerNeutralFailure: NEUTRAL_FAILURE_SCRIPT,
} as const;

type ScriptClient = { [Name in keyof typeof SCRIPTS]: (key: string, ...args: string[]) => Promise<number> };

/** Answered when Redis could not be used: the caller answers from the local view. */
const UNREACHABLE = Symbol('redis unreachable');

/** A circuit breaker whose circuits live in Redis, shared by every instance; see the module comment. */
export class RedisCircuitBreaker implements ProviderCircuitBreaker {
  /** This instance's own view: records every outcome, answers while Redis cannot. */
  private readonly local: CircuitBreaker;
  private readonly now: () => number;
  private readonly keyPrefix: string;
  private readonly trialLeaseMs: number;
  private readonly idleExpiryMs: number;
  private readonly redisTimeoutMs: number;
  /** Whether Redis is known to be unreachable (a warning was logged for this outage). */
  private unreachable = false;
  /**
   * Providers whose circuit had no state in Redis at this instance's last check, with no failure
   * recorded here since: a success then has nothing to reset, and sends no `DEL`.
   */
  private readonly knownClean = new Set<string>();

  /**
   * @param redis a command client (`createRedisState(...).commands`); it may connect later: until it
   *   is ready the local view answers. The scripts are defined on it once.
   */
  constructor(
    private readonly redis: Redis,
    private readonly options: RedisCircuitBreakerOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.local = new CircuitBreaker({ failureThreshold: options.failureThreshold, cooldownMs: options.cooldownMs, now: this.now });
    this.keyPrefix = options.keyPrefix ?? BREAKER_KEY_PREFIX;
    this.trialLeaseMs = options.trialLeaseMs ?? Math.max(options.cooldownMs, 60_000);
    this.idleExpiryMs = options.idleExpiryMs ?? Math.max(options.cooldownMs, 3_600_000);
    this.redisTimeoutMs = options.redisTimeoutMs ?? 500;
    const client = redis as unknown as Record<string, unknown>;
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (typeof client[name] !== 'function') redis.defineCommand(name, { numberOfKeys: 1, lua });
    }
  }

  /** The Redis key of a provider's circuit. */
  keyOf(providerId: string): string {
    return `${this.keyPrefix}${providerId}`;
  }

  async tryAcquire(providerId: string): Promise<boolean> {
    const now = this.now();
    const answer = await this.shared((scripts) => scripts.gatewayBreakerAcquire(this.keyOf(providerId), String(now), String(now + this.trialLeaseMs)));
    if (answer === UNREACHABLE) return this.local.tryAcquire(providerId);
    if (answer === 2) this.knownClean.add(providerId);
    else this.knownClean.delete(providerId);
    return answer !== 0;
  }

  /**
   * A success closes the circuit for every instance (`DEL`), unless this instance's last check found
   * no state to clear (and it recorded no failure since): most requests then cost one command, not
   * two. A failure another instance counted between that check and this success stands until the
   * next success whose check sees it — one success later than the in-memory breaker would reset it.
   */
  async recordSuccess(providerId: string): Promise<void> {
    this.local.recordSuccess(providerId);
    if (this.knownClean.has(providerId)) return;
    await this.shared(() => this.redis.del(this.keyOf(providerId)));
  }

  async recordFailure(providerId: string, error: CircuitFailure): Promise<void> {
    this.local.recordFailure(providerId, error);
    this.knownClean.delete(providerId);
    const key = this.keyOf(providerId);
    if (!countsAgainstProvider(error.code)) {
      await this.shared((scripts) => scripts.gatewayBreakerNeutralFailure(key));
      return;
    }
    const now = this.now();
    const retryUntil = error.retryAfterMs !== undefined && error.retryAfterMs > 0 ? now + error.retryAfterMs : 0;
    await this.shared((scripts) =>
      scripts.gatewayBreakerFailure(
        key,
        String(now),
        String(now + this.options.cooldownMs),
        String(retryUntil),
        String(this.options.failureThreshold),
        error.code,
        error.message,
        error.provider ?? '',
        String(this.idleExpiryMs),
      ),
    );
  }

  async state(providerId: string): Promise<CircuitState> {
    const fields = await this.shared(() => this.redis.hgetall(this.keyOf(providerId)));
    return fields === UNREACHABLE ? this.local.state(providerId) : circuitStateOf(fields, this.now());
  }

  async unavailableReason(providerId: string): Promise<string | undefined> {
    return describeOpenCircuit(await this.state(providerId));
  }

  /** Runs one Redis operation, or answers {@link UNREACHABLE} (logging the outage once) when Redis cannot answer now. */
  private async shared<Result>(operation: (scripts: ScriptClient) => Promise<Result>): Promise<Result | typeof UNREACHABLE> {
    if (this.redis.status !== 'ready') {
      this.markUnreachable(`the Redis connection is ${this.redis.status}`);
      return UNREACHABLE;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from Redis within ${this.redisTimeoutMs} ms`)), this.redisTimeoutMs);
        timer.unref();
      });
      const result = await Promise.race([operation(this.redis as unknown as ScriptClient), timeout]);
      if (this.unreachable) {
        this.unreachable = false;
        this.options.logger?.info('circuit breaker: Redis answers again; the shared circuit state is used again');
      }
      return result;
    } catch (error) {
      this.markUnreachable((error as Error).message);
      return UNREACHABLE;
    } finally {
      clearTimeout(timer);
    }
  }

  private markUnreachable(why: string): void {
    if (this.unreachable) return;
    this.unreachable = true;
    this.options.logger?.warn({ reason: why }, 'circuit breaker: Redis is unreachable; this instance uses its own view of the circuits until it answers again');
  }
}

/** A circuit hash (`HGETALL`; `{}` when there is none) as the breaker's view, like {@link CircuitBreaker.state}. */
function circuitStateOf(fields: Record<string, string>, now: number): CircuitState {
  if (fields.failures === undefined && fields.openUntil === undefined) return { state: 'closed', consecutiveFailures: 0 };
  const openUntil = Number(fields.openUntil ?? 0);
  const base = {
    consecutiveFailures: Number(fields.failures ?? 0),
    ...(fields.lastCode && {
      lastError: { code: fields.lastCode, message: fields.lastMessage ?? '', ...(fields.lastProvider && { provider: fields.lastProvider }) },
    }),
  };
  if (openUntil === 0) return { state: 'closed', ...base };
  return { state: now < openUntil ? 'open' : 'half-open', ...base, openUntil: new Date(openUntil) };
}
