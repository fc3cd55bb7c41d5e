import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/providers/circuit-breaker.js';

function breakerWithClock(failureThreshold = 2, cooldownMs = 1000) {
  const clock = { now: 1_000_000 };
  const breaker = new CircuitBreaker({ failureThreshold, cooldownMs, now: () => clock.now });
  return { breaker, clock };
}

const upstreamError = { code: 'UPSTREAM_ERROR', message: 'upstream answered 500', provider: 'alpha' };

describe('CircuitBreaker', () => {
  it('opens after the threshold of failures in a row, and says why', () => {
    const { breaker } = breakerWithClock(2);
    breaker.recordFailure('alpha', upstreamError);
    expect(breaker.tryAcquire('alpha')).toBe(true);
    breaker.recordFailure('alpha', upstreamError);
    expect(breaker.tryAcquire('alpha')).toBe(false);
    expect(breaker.state('alpha')).toMatchObject({ state: 'open', consecutiveFailures: 2 });
    expect(breaker.unavailableReason('alpha')).toMatch(/circuit open after 2 failure\(s\) in a row \(last: UPSTREAM_ERROR: upstream answered 500\)/);
    expect(breaker.tryAcquire('beta')).toBe(true);
  });

  it('lets one trial through after the cool-down: success closes, failure opens again', () => {
    const { breaker, clock } = breakerWithClock(1, 1000);
    breaker.recordFailure('alpha', upstreamError);
    expect(breaker.tryAcquire('alpha')).toBe(false);
    clock.now += 1000;
    expect(breaker.state('alpha').state).toBe('half-open');
    expect(breaker.tryAcquire('alpha')).toBe(true);
    expect(breaker.tryAcquire('alpha')).toBe(false); // one trial at a time
    breaker.recordFailure('alpha', upstreamError);
    expect(breaker.state('alpha').state).toBe('open');
    clock.now += 1000;
    expect(breaker.tryAcquire('alpha')).toBe(true);
    breaker.recordSuccess('alpha');
    expect(breaker.state('alpha')).toEqual({ state: 'closed', consecutiveFailures: 0 });
    expect(breaker.tryAcquire('alpha')).toBe(true);
  });

  it('honours Retry-After: a 429 opens the circuit at once until then', () => {
    const { breaker, clock } = breakerWithClock(5, 1000);
    breaker.recordFailure('alpha', { code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 30_000 });
    expect(breaker.tryAcquire('alpha')).toBe(false);
    clock.now += 29_999;
    expect(breaker.tryAcquire('alpha')).toBe(false);
    clock.now += 1;
    expect(breaker.tryAcquire('alpha')).toBe(true);
  });

  it('does not count failures that are not the provider\'s fault', () => {
    const { breaker } = breakerWithClock(1);
    breaker.recordFailure('alpha', { code: 'UPSTREAM_BAD_REQUEST', message: 'bad parameter' });
    breaker.recordFailure('alpha', { code: 'UPSTREAM_NOT_FOUND', message: 'no such model' });
    expect(breaker.tryAcquire('alpha')).toBe(true);
    expect(breaker.state('alpha').state).toBe('closed');
  });

  it('a success resets the count', () => {
    const { breaker } = breakerWithClock(2);
    breaker.recordFailure('alpha', upstreamError);
    breaker.recordSuccess('alpha');
    breaker.recordFailure('alpha', upstreamError);
    expect(breaker.tryAcquire('alpha')).toBe(true);
  });
});
