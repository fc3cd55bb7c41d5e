/**
 * Generation spans with OpenTelemetry: the `GenerationTracer` the generation service calls when
 * tracing is on. Each generation run here is one span, a child of the HTTP request that started
 * it (or of the queued job's trace context), with one child per provider attempt, so fallback
 * shows as failed attempts followed by the one that delivered. An attempt's trace context goes to
 * its provider as headers, which the provider sends upstream (`traceparent`).
 *
 * Contexts are passed explicitly, never through a context manager: on Node 20 an
 * `AsyncLocalStorage` context manager turns on promise hooks for the whole process, which costs
 * every promise of every request (`docs/performance.md#tracing`).
 *
 * Attribute names follow the OpenTelemetry semantic conventions for generative AI
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/), summarised in
 * `docs/operations.md#tracing`: `gen_ai.operation.name` (`chat`, or `generate_content` for images),
 * `gen_ai.provider.name` and its older name `gen_ai.system`, `gen_ai.request.model` and the
 * request's parameters, `gen_ai.response.model`, `gen_ai.response.id`,
 * `gen_ai.response.finish_reasons`, `gen_ai.usage.input_tokens` / `output_tokens`, `error.type`.
 * Attributes of the gateway's own are under `gateway.`. No prompt or reply text is recorded.
 */
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import type { GenerationRecord } from '../../generations/generation-records.js';
import type { GenerationTrace, GenerationTraceRequest, GenerationTracer, TraceCarrier } from '../../generations/generation-tracer.js';

/** Name of the span event marking a generation's first content; its attribute gives the delay in seconds. */
export const FIRST_CONTENT_EVENT = 'gen_ai.first_token';

/** `gen_ai.operation.name` of a generation of this kind. */
function operationOf(record: GenerationRecord): string {
  return record.kind === 'chat' ? 'chat' : 'generate_content';
}

/** The request's parameters as `gen_ai.request.*` attributes. */
function requestAttributes(request: GenerationTraceRequest): Attributes {
  return {
    ...(request.maxTokens !== undefined && { 'gen_ai.request.max_tokens': request.maxTokens }),
    ...(request.temperature !== undefined && { 'gen_ai.request.temperature': request.temperature }),
    ...(request.topP !== undefined && { 'gen_ai.request.top_p': request.topP }),
    ...(request.seed !== undefined && { 'gen_ai.request.seed': request.seed }),
  };
}

/** `error.type` of a failure: a gateway or provider error's code, else the error's class name. */
function errorTypeOf(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.name : 'Error';
}

/** The trace of one generation; see the module comment. */
class GenerationSpan implements GenerationTrace {
  private firstContentSeen = false;
  private readonly startedAtMs = performance.now();

  constructor(
    private readonly tracer: Tracer,
    private readonly propagator: TextMapPropagator,
    private readonly span: Span,
    private readonly spanContext: Context,
    private readonly operation: string,
  ) {}

  async attempt<Result>(target: { provider: string; model: string; number: number }, work: (traceHeaders: Readonly<TraceCarrier>) => Promise<Result>): Promise<Result> {
    const span = this.tracer.startSpan(
      `${this.operation} ${target.model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'gen_ai.operation.name': this.operation,
          'gen_ai.provider.name': target.provider,
          'gen_ai.system': target.provider,
          'gen_ai.request.model': target.model,
          'gateway.attempt.number': target.number,
        },
      },
      this.spanContext,
    );
    const traceHeaders: TraceCarrier = {};
    this.propagator.inject(trace.setSpan(this.spanContext, span), traceHeaders, defaultTextMapSetter);
    try {
      const result = await work(traceHeaders);
      span.end();
      return result;
    } catch (error) {
      span.setAttribute('error.type', errorTypeOf(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      span.end();
      throw error;
    }
  }

  contentReceived(): void {
    if (this.firstContentSeen) return;
    this.firstContentSeen = true;
    this.span.addEvent(FIRST_CONTENT_EVENT, { 'gen_ai.server.time_to_first_token': (performance.now() - this.startedAtMs) / 1000 });
  }

  end(record: GenerationRecord): void {
    const { span } = this;
    span.setAttributes({
      'gen_ai.provider.name': record.provider,
      'gen_ai.system': record.provider,
      'gen_ai.response.model': record.model,
      'gen_ai.response.id': record.id,
      'gateway.generation.status': record.status,
    });
    if (record.kind === 'chat') {
      if (record.finishReason) span.setAttribute('gen_ai.response.finish_reasons', [record.finishReason.replace('-', '_')]);
      const { usage } = record;
      if (usage?.promptTokens !== undefined) span.setAttribute('gen_ai.usage.input_tokens', usage.promptTokens);
      if (usage?.completionTokens !== undefined) span.setAttribute('gen_ai.usage.output_tokens', usage.completionTokens);
    } else {
      span.setAttribute('gateway.image.count', record.images.length);
    }
    if (record.status === 'failed') {
      span.setAttribute('error.type', record.error?.code ?? 'FAILED');
      span.setStatus({ code: SpanStatusCode.ERROR, message: record.error?.message ?? 'failed' });
    }
    span.end(record.finishedAt);
  }
}

/** The OpenTelemetry `GenerationTracer`; spans come from `tracer`, contexts travel as headers through `propagator` (W3C Trace Context). */
export function createGenerationTracer(tracer: Tracer, propagator: TextMapPropagator): GenerationTracer {
  return {
    startGeneration(record, request, parent) {
      const parentContext = parent ? propagator.extract(ROOT_CONTEXT, parent, defaultTextMapGetter) : ROOT_CONTEXT;
      const operation = operationOf(record);
      const requestedModel = request.model ?? record.model;
      const span = tracer.startSpan(
        `${operation} ${requestedModel}`,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'gen_ai.operation.name': operation,
            'gen_ai.output.type': record.kind === 'chat' ? 'text' : 'image',
            'gen_ai.provider.name': record.provider,
            'gen_ai.system': record.provider,
            'gen_ai.request.model': requestedModel,
            ...requestAttributes(request),
            ...(record.kind === 'chat' && record.conversationId !== undefined && { 'gen_ai.conversation.id': record.conversationId }),
            'gateway.generation.id': record.id,
          },
        },
        parentContext,
      );
      return new GenerationSpan(tracer, propagator, span, trace.setSpan(parentContext, span), operation);
    },
  };
}
