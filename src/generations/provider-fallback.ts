/**
 * Provider fallback: a generation's candidates (provider and model) tried in order, each through
 * the circuit breaker, until one delivers.
 */
import type { Logger } from '../operations/logger.js';
import type { ProviderCircuitBreaker } from '../providers/circuit-breaker.js';
import type { ResolvedModel } from '../providers/provider-registry.js';
import { ProviderError, type Provider } from '../providers/provider.js';
import { AllProvidersFailedError, toGenerationError } from './generation-errors.js';
import type { GenerationErrorShape, UnnumberedGenerationEvent } from './generation-events.js';
import type { GenerationRecord } from './generation-records.js';
import type { GenerationRun } from './generation-run.js';
import type { TraceCarrier } from './generation-tracer.js';

/**
 * One attempt: runs `candidate` (attempt 1, 2, …) and calls `markContent` once content (a text
 * delta, an image) began. `traceHeaders`: with tracing on, the attempt's trace context for the
 * provider's upstream requests (`StreamOptions.traceHeaders`).
 */
export type ProviderAttempt<P extends Provider> = (
  candidate: ResolvedModel<P>,
  attemptNumber: number,
  markContent: () => void,
  traceHeaders?: Readonly<TraceCarrier>,
) => Promise<UnnumberedGenerationEvent>;

/** What a work function's attempt gets from fallback besides its candidate (see {@link ProviderAttempt}). */
export interface AttemptDetails {
  attemptNumber: number;
  markContent: () => void;
  traceHeaders?: Readonly<TraceCarrier>;
}

/** What fallback needs beside the run. */
export interface FallbackOptions {
  /** Failure counting per provider; absent = every candidate is tried. */
  breaker?: ProviderCircuitBreaker;
  logger: Logger;
  /** Told once an attempt's content began (metrics: time to first token). */
  onContent(record: GenerationRecord): void;
}

/**
 * Tries the candidates in order. A failure before the attempt produced content is reported as
 * `provider-attempt-failed` and the next candidate runs; a failure after content began ends the
 * generation (no switch mid-stream). The outcome of every attempt the circuit breaker let through
 * feeds it (a cancellation only ends a half-open trial); candidates whose circuit is open, or
 * half-open with a trial in flight, are skipped. When several candidates all fail the generation
 * fails with `ALL_PROVIDERS_FAILED` naming each; a single candidate's failure keeps its own code.
 * @returns the terminal success event of the attempt that delivered.
 * @throws the run's abort reason when it is aborted, the last failure, or AllProvidersFailedError.
 */
export async function runWithFallback<P extends Provider>(
  run: GenerationRun,
  candidates: Array<ResolvedModel<P>>,
  options: FallbackOptions,
  attempt: ProviderAttempt<P>,
): Promise<UnnumberedGenerationEvent> {
  const { breaker, logger } = options;
  const { record } = run;
  const failures: Array<{ error: unknown; shape: GenerationErrorShape }> = [];
  for (const [index, candidate] of candidates.entries()) {
    const providerId = candidate.provider.id;
    const last = index === candidates.length - 1;
    let contentStarted = false;
    /** Whether the breaker let this attempt through (only such attempts report their outcome to it). */
    let admitted = false;
    const tryCandidate = async (traceHeaders?: Readonly<TraceCarrier>): Promise<UnnumberedGenerationEvent> => {
      if (breaker && !(await breaker.tryAcquire(providerId))) {
        const reason = (await breaker.unavailableReason(providerId)) ?? 'circuit half-open: one trial request is in flight; the others skip the provider until it ends';
        throw new ProviderError({ code: 'PROVIDER_UNAVAILABLE', provider: providerId, message: reason });
      }
      admitted = true;
      return attempt(
        candidate,
        index + 1,
        () => {
          contentStarted = true;
          options.onContent(record);
          run.trace?.contentReceived();
        },
        traceHeaders,
      );
    };
    try {
      // Traced, the attempt (a skip by the open circuit included) is a child span of the generation's.
      const completed = await (run.trace ? run.trace.attempt({ provider: providerId, model: candidate.model, number: index + 1 }, tryCandidate) : tryCandidate());
      await breaker?.recordSuccess(providerId);
      return completed;
    } catch (error) {
      if (run.abort.aborted) {
        // A cancellation says nothing about the provider (not counted); a half-open trial it ends lets the next request try.
        if (admitted) await breaker?.recordFailure(providerId, { code: 'CANCELLED', message: 'cancelled', provider: providerId });
        throw error;
      }
      const shape = toGenerationError(error, providerId, logger, record.id);
      if (admitted) {
        await breaker?.recordFailure(providerId, { ...shape, ...(error instanceof ProviderError && error.retryAfterMs !== undefined && { retryAfterMs: error.retryAfterMs }) });
      }
      if (contentStarted) throw error;
      failures.push({ error, shape });
      if (last) break;
      await run.emit({ type: 'provider-attempt-failed', provider: providerId, error: shape });
    }
  }
  if (failures.length === 1) throw failures[0]!.error;
  throw new AllProvidersFailedError(failures.map((failure) => failure.shape));
}
