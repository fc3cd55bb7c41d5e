/**
 * A circuit breaker per provider. A provider that fails `failureThreshold` times in a row is
 * skipped for `cooldownMs` ("open"); after the cool-down one request is let through
 * ("half-open"): success closes the circuit, failure opens it again. A 429 with `Retry-After`
 * opens it at once until that time. Only failures that say something about the provider count
 * (timeouts, 5xx, lost connections, 401/403, 429, bad responses) — not a request the upstream
 * rejected as invalid, nor an unknown model, nor a cancellation.
 *
 * {@link CircuitBreaker} keeps the circuits in this instance's memory (the default);
 * `RedisCircuitBreaker` (`redis-circuit-breaker.ts`) shares them between instances. Both implement
 * {@link ProviderCircuitBreaker}, whose answers may be promises: callers `await` them.
 */

/** Codes that count as the provider failing. */
const COUNTED_CODES = new Set([
  'UPSTREAM_ERROR',
  'UPSTREAM_TIMEOUT',
  'RATE_LIMITED',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'UPSTREAM_BAD_RESPONSE',
  'UPSTREAM_CONNECTION_LOST',
  'PROVIDER_UNAVAILABLE',
  'PROVIDER_ERROR',
]);

/** Whether a failure with this `code` counts against the provider (see the module comment). */
export function countsAgainstProvider(code: string): boolean {
  return COUNTED_CODES.has(code);
}

/** A value, or a promise of it: the in-memory breaker answers at once, the shared one after a Redis round trip. */
export type MaybePromise<Value> = Value | Promise<Value>;

/** What a breaker records about a failure: its error, and for a 429 the upstream's `Retry-After`, ms. */
export interface CircuitFailure {
  /** A stable code, e.g. `UPSTREAM_TIMEOUT`, `RATE_LIMITED` (a provider error's), or `CANCELLED`. */
  code: string;
  message: string;
  provider?: string;
  /** Milliseconds the provider asked to wait (a 429's `Retry-After`): the circuit stays open at least this long. */
  retryAfterMs?: number;
}

/**
 * What routing (the generation service's fallback), the catalog (`providers`, REST `/v1/providers`)
 * and `/metrics` use of a circuit breaker. Implementations never throw from these methods.
 */
export interface ProviderCircuitBreaker {
  /**
   * Whether a request may go to the provider now. An open circuit past its cool-down lets exactly
   * one trial request through (and answers false to others until that trial ends).
   */
  tryAcquire(providerId: string): MaybePromise<boolean>;
  /** Records a success: the circuit closes. */
  recordSuccess(providerId: string): MaybePromise<void>;
  /**
   * Records a failure. Counted failures add up; the threshold (or a failed trial) opens the circuit for
   * the cool-down; a `retryAfterMs` (from 429) opens it at once for at least that long. A failure
   * that does not count (see {@link countsAgainstProvider}; a cancellation too) only ends a trial.
   */
  recordFailure(providerId: string, error: CircuitFailure): MaybePromise<void>;
  /** The provider's circuit now. */
  state(providerId: string): MaybePromise<CircuitState>;
  /** Why the provider is skipped, or undefined when its circuit lets requests through. */
  unavailableReason(providerId: string): MaybePromise<string | undefined>;
}

/**
 * The text of {@link ProviderCircuitBreaker.unavailableReason} for a circuit: undefined unless it is open.
 * `circuit open after 3 failure(s) in a row (last: UPSTREAM_ERROR: …); retried after 2025-01-01T00:00:00.000Z`.
 */
export function describeOpenCircuit(state: CircuitState): string | undefined {
  if (state.state !== 'open') return undefined;
  const last = state.lastError ? ` (last: ${state.lastError.code}: ${state.lastError.message})` : '';
  return `circuit open after ${state.consecutiveFailures} failure(s) in a row${last}; retried after ${state.openUntil!.toISOString()}`;
}

/** The breaker's view of one provider. */
export interface CircuitState {
  state: 'closed' | 'open' | 'half-open';
  consecutiveFailures: number;
  /** When an open circuit lets a trial request through. */
  openUntil?: Date;
  lastError?: CircuitFailure;
}

/** Settings: how many failures in a row open the circuit, and for how long (ms). */
export interface CircuitBreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  /** Clock, ms since the epoch (tests may pass their own). */
  now?: () => number;
}

interface Circuit {
  consecutiveFailures: number;
  openUntil: number;
  trialInFlight: boolean;
  lastError?: CircuitFailure;
}

/** Failure counting and cool-downs for every provider, by id, in this instance's memory (answers synchronously). */
export class CircuitBreaker implements ProviderCircuitBreaker {
  private readonly circuits = new Map<string, Circuit>();
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Whether a request may go to the provider now. An open circuit past its cool-down lets exactly
   * one trial request through (and answers false to others until that trial ends).
   */
  tryAcquire(providerId: string): boolean {
    const circuit = this.circuits.get(providerId);
    if (!circuit || circuit.openUntil === 0) return true;
    if (this.now() < circuit.openUntil || circuit.trialInFlight) return false;
    circuit.trialInFlight = true;
    return true;
  }

  /** Records a success: the circuit closes. */
  recordSuccess(providerId: string): void {
    this.circuits.delete(providerId);
  }

  /**
   * Records a failure. Counted failures add up; the threshold (or a failed trial) opens the circuit for
   * the cool-down; a `retryAfterMs` (from 429) opens it at once for at least that long.
   */
  recordFailure(providerId: string, error: CircuitFailure): void {
    const circuit = this.circuits.get(providerId) ?? { consecutiveFailures: 0, openUntil: 0, trialInFlight: false };
    if (!COUNTED_CODES.has(error.code)) {
      // Not the provider's fault: a trial that ends this way proves nothing; let the next one try.
      circuit.trialInFlight = false;
      if (circuit.consecutiveFailures > 0 || circuit.openUntil > 0) this.circuits.set(providerId, circuit);
      return;
    }
    const wasTrial = circuit.trialInFlight;
    circuit.trialInFlight = false;
    circuit.consecutiveFailures += 1;
    circuit.lastError = { code: error.code, message: error.message, ...(error.provider !== undefined && { provider: error.provider }) };
    const now = this.now();
    if (wasTrial || circuit.consecutiveFailures >= this.options.failureThreshold) {
      circuit.openUntil = now + this.options.cooldownMs;
    }
    if (error.retryAfterMs !== undefined && error.retryAfterMs > 0) {
      circuit.openUntil = Math.max(circuit.openUntil, now + error.retryAfterMs);
    }
    this.circuits.set(providerId, circuit);
  }

  /** The provider's circuit now. */
  state(providerId: string): CircuitState {
    const circuit = this.circuits.get(providerId);
    if (!circuit) return { state: 'closed', consecutiveFailures: 0 };
    const base = {
      consecutiveFailures: circuit.consecutiveFailures,
      ...(circuit.lastError && { lastError: circuit.lastError }),
    };
    if (circuit.openUntil === 0) return { state: 'closed', ...base };
    return {
      state: this.now() < circuit.openUntil ? 'open' : 'half-open',
      ...base,
      openUntil: new Date(circuit.openUntil),
    };
  }

  /** Why the provider is skipped, or undefined when its circuit lets requests through. */
  unavailableReason(providerId: string): string | undefined {
    return describeOpenCircuit(this.state(providerId));
  }
}
