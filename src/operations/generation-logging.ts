/**
 * Log lines about generations, one JSON object each, always with `generationId` (and the
 * `requestId` of the HTTP request that started it, when there was one):
 * - `generation started` (info): kind, provider, model;
 * - `generation finished` (info for completed and cancelled, warn for failed): status, provider,
 *   model, durationMs, timeToFirstContentMs, usage tokens, and for failures the error code.
 * Prompts, generated text and error messages from upstreams are not logged (they may hold personal
 * data); the error code and provider say what failed.
 */
import type { GenerationRecord } from '../generations/generation-records.js';
import type { GenerationObserver } from '../generations/generation-observer.js';
import type { Logger } from './logger.js';

/** A generation observer that writes the log lines described in the module comment. */
export function createGenerationLogging(logger: Logger): GenerationObserver {
  const firstContentAt = new WeakMap<GenerationRecord, number>();
  const requestIds = new WeakMap<GenerationRecord, string>();
  return {
    generationStarted(record, { requestId }) {
      if (requestId !== undefined) requestIds.set(record, requestId);
      logger.info(
        { generationId: record.id, requestId, kind: record.kind, provider: record.provider, model: record.model },
        'generation started',
      );
    },
    contentReceived(record) {
      if (!firstContentAt.has(record)) firstContentAt.set(record, Date.now());
    },
    generationFinished(record) {
      const finishedAt = (record.finishedAt ?? new Date()).getTime();
      const first = firstContentAt.get(record);
      const requestId = requestIds.get(record);
      // Kept generations outlive this: their entries go now (an entry held to the end of retention is
      // heap each kept generation pays for, and scavenges copy).
      firstContentAt.delete(record);
      requestIds.delete(record);
      const fields = {
        generationId: record.id,
        requestId,
        kind: record.kind,
        status: record.status,
        provider: record.provider,
        model: record.model,
        durationMs: finishedAt - record.createdAt.getTime(),
        ...(first !== undefined && { timeToFirstContentMs: first - record.createdAt.getTime() }),
        ...(record.kind === 'chat' && record.usage && { usage: record.usage }),
        ...(record.kind === 'chat' && record.finishReason && { finishReason: record.finishReason }),
        ...(record.kind === 'image' && { images: record.images.length }),
        ...(record.error && { errorCode: record.error.code, errorProvider: record.error.provider }),
      };
      if (record.status === 'failed') logger.warn(fields, 'generation failed');
      else logger.info(fields, `generation ${record.status}`);
    },
  };
}
