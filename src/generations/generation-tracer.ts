/**
 * Tracing of generations, as the generation service sees it: one trace per generation that runs
 * on this instance, one child per provider attempt. The service knows only these interfaces;
 * `operations/tracing/` implements them with OpenTelemetry when tracing is configured, and a
 * service without a tracer skips every call (no cost when tracing is off).
 */
import type { ChatRequest } from '../providers/provider.js';
import type { GenerationRecord } from './generation-records.js';

/** What a trace records of the request, beside the record (OpenTelemetry GenAI `gen_ai.request.*`). */
export interface GenerationTraceRequest {
  /** The model the request named (an alias included); absent when it named none. */
  model?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
}

/** The trace request of a generation when tracing is off (never read; nothing is built for it). */
export const UNTRACED: GenerationTraceRequest = Object.freeze({});

/** What a trace records of a request: the model it named (trimmed; none when empty) and the chat parameters it set. */
export function traceRequestOf(model: string | null | undefined, parameters: Pick<ChatRequest, 'maxTokens' | 'temperature' | 'topP' | 'seed'> = {}): GenerationTraceRequest {
  return {
    ...(model?.trim() && { model: model.trim() }),
    ...(parameters.maxTokens !== undefined && { maxTokens: parameters.maxTokens }),
    ...(parameters.temperature !== undefined && { temperature: parameters.temperature }),
    ...(parameters.topP !== undefined && { topP: parameters.topP }),
    ...(parameters.seed !== undefined && { seed: parameters.seed }),
  };
}

/**
 * A trace context carried across processes, as W3C Trace Context headers (`traceparent`,
 * `tracestate`; https://www.w3.org/TR/trace-context/), e.g. inside a queued job.
 */
export type TraceCarrier = Record<string, string>;

/** Opens the trace of each generation. */
export interface GenerationTracer {
  /**
   * A generation starts running here. Its span is a child of `parent` (the HTTP request's span, or
   * that of the request that queued the job), or the root of a trace of its own without one.
   */
  startGeneration(record: GenerationRecord, request: GenerationTraceRequest, parent?: Readonly<TraceCarrier>): GenerationTrace;
}

/** The trace of one generation; every method is quick and never throws. */
export interface GenerationTrace {
  /**
   * Runs one provider attempt (`number` from 1) as a child span of the generation's. `work` gets
   * the attempt's trace context as headers, for the provider to send upstream (`traceparent`), so
   * an upstream that traces continues the trace. The span ends when `work` settles, marked failed
   * when it rejects.
   */
  attempt<Result>(target: { provider: string; model: string; number: number }, work: (traceHeaders: Readonly<TraceCarrier>) => Promise<Result>): Promise<Result>;
  /** Content arrived (a token, a tool call, an image); the first call adds the time-to-first-token event. */
  contentReceived(): void;
  /** The generation ended (`record.status` final): the response attributes are set and the span ends. */
  end(record: GenerationRecord): void;
}
