/**
 * How a generation's failures and abort reasons are told apart, and how any failure becomes the
 * error shape clients see (`GenerationFailed.error`, a REST error body).
 */
import { ImageStoreError } from '../images/image-store.js';
import { defaultLogger, type Logger } from '../operations/logger.js';
import { ProviderError } from '../providers/provider.js';
import { GatewayError } from './gateway-error.js';
import type { GenerationErrorShape } from './generation-events.js';

/** Every candidate provider failed; `failures` holds each one's error, in the order tried. */
export class AllProvidersFailedError extends Error {
  override readonly name = 'AllProvidersFailedError';
  readonly code = 'ALL_PROVIDERS_FAILED';
  constructor(readonly failures: GenerationErrorShape[]) {
    super(`All ${failures.length} providers failed: ${failures.map((failure) => `${failure.provider ?? '?'}: ${failure.code}: ${failure.message}`).join('; ')}`);
  }
}

/** Why a generation was cancelled; the abort reason carried by its abort. */
export class GenerationCancellation extends Error {
  override readonly name = 'GenerationCancellation';
}

/** The abort reason of a generation that ran past its time limit: it ends FAILED with code `GENERATION_TIMEOUT`. */
export class GenerationTimeout extends Error {
  override readonly name = 'GenerationTimeout';
  readonly code = 'GENERATION_TIMEOUT';
}

/**
 * Any failure of a provider as the client-facing error shape. Provider, image store and gateway
 * errors keep their code and message; an unexpected error is logged and reported as
 * `PROVIDER_ERROR` without its internals.
 */
export function toGenerationError(error: unknown, providerId: string, logger: Logger = defaultLogger(), generationId?: string): GenerationErrorShape {
  if (error instanceof ProviderError) {
    return { code: error.code, message: error.message, provider: error.provider };
  }
  if (error instanceof ImageStoreError || error instanceof GatewayError) {
    return { code: error.code, message: error.message, provider: providerId };
  }
  if (error instanceof AllProvidersFailedError) return { code: error.code, message: error.message };
  logger.error({ err: error, provider: providerId, generationId }, `provider ${providerId} failed unexpectedly`);
  return { code: 'PROVIDER_ERROR', message: `Provider ${providerId} failed unexpectedly.`, provider: providerId };
}
