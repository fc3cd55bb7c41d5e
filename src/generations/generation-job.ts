/**
 * A queued generation (roles `api` and `worker`, see `docs/scaling-out.md`): what a worker needs to
 * run it. Never a per-request API key: such a request runs on the instance that took it.
 */
import type { ProviderRegistry } from '../providers/provider-registry.js';
import type { ChatMessage, ChatProvider, ChatRequest, ImageProvider, ImageRequest } from '../providers/provider.js';
import { chatWork, type ChatRunOptions } from './chat-run.js';
import { GatewayError } from './gateway-error.js';
import type { ImageResponseFormat } from './generation-inputs.js';
import type { GenerationRecord } from './generation-records.js';
import type { GenerationTraceRequest, TraceCarrier } from './generation-tracer.js';
import type { GenerationWork } from './generation-run.js';
import { imageWork, type ImageRunOptions } from './image-run.js';

/** One queued generation. */
export type GenerationJobData = {
  generationId: string;
  /** The resolved candidates, in the order to try them. */
  candidates: Array<{ providerId: string; model: string }>;
  /** With tracing on: the trace of the request that queued it, so the worker's span continues it. */
  trace?: { carrier: Readonly<TraceCarrier>; request: GenerationTraceRequest };
} & (
  | { kind: 'chat'; request: Omit<ChatRequest, 'apiKey'>; newMessages: ChatMessage[] }
  | { kind: 'image'; request: Omit<ImageRequest, 'apiKey'>; responseFormat: ImageResponseFormat }
);

/**
 * The work of a queued generation on a worker: its candidates as this worker's providers (a
 * candidate whose provider the worker lacks is skipped; none left fails with `PROVIDER_NOT_FOUND`).
 * @throws Error when the job's kind is not the generation's.
 */
export function jobWork(data: GenerationJobData, record: GenerationRecord, registry: ProviderRegistry, options: ChatRunOptions & ImageRunOptions): GenerationWork {
  if (record.kind === 'chat' && data.kind === 'chat') {
    const candidates = data.candidates.flatMap(({ providerId, model }) => {
      const provider = registry.get(providerId);
      return provider?.streamChat ? [{ provider: provider as ChatProvider, model }] : [];
    });
    return candidates.length > 0 ? chatWork(candidates, data.request, data.newMessages, options) : missingProviders(data);
  }
  if (record.kind === 'image' && data.kind === 'image') {
    const candidates = data.candidates.flatMap(({ providerId, model }) => {
      const provider = registry.get(providerId);
      return provider?.generateImages ? [{ provider: provider as ImageProvider, model }] : [];
    });
    return candidates.length > 0 ? imageWork(candidates, data.request, data.responseFormat, options) : missingProviders(data);
  }
  throw new Error(`job ${data.generationId} is a ${data.kind} job but the generation is ${record.kind}`);
}

/** Work for a job none of whose providers this worker has: fails with `PROVIDER_NOT_FOUND`. */
function missingProviders(data: GenerationJobData): GenerationWork {
  const providerId = data.candidates[0]?.providerId ?? '?';
  return async () => {
    throw new GatewayError('PROVIDER_NOT_FOUND', `This worker has no ${data.kind} provider "${providerId}".`);
  };
}
