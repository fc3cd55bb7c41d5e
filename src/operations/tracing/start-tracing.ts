/**
 * OpenTelemetry tracing, when configured (`OTEL_EXPORTER_OTLP_ENDPOINT`, see
 * `config/tracing-settings.ts` and `docs/operations.md#tracing`). The app imports this module
 * only then, so without tracing none of the SDK is loaded and nothing on a request's path changes.
 *
 * What it sets up, with the official packages:
 * - a tracer provider (`@opentelemetry/sdk-trace-base`) whose spans are batched
 *   (`BatchSpanProcessor`: at most 2048 waiting, `OTEL_BSP_*`; more are dropped, never buffered
 *   without bound) and exported over OTLP/HTTP, protobuf or JSON, to the configured endpoint;
 *   sampling follows `OTEL_TRACES_SAMPLER` (default: parent-based, always on);
 * - server spans per HTTP request (`http-request-spans.ts`) and generation spans with a child per
 *   provider attempt (`generation-spans.ts`), whose trace context providers send upstream as
 *   `traceparent` (`StreamOptions.traceHeaders`);
 * - the W3C Trace Context propagator (`@opentelemetry/core`), used directly.
 * Nothing is registered globally — no global tracer provider, propagator or context manager: contexts
 * travel explicitly (see `generation-spans.ts` for why), and several apps can trace in one process.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../../config/tracing-settings.js';
import type { GenerationTracer } from '../../generations/generation-tracer.js';
import type { Logger } from '../logger.js';
import { createGenerationTracer } from './generation-spans.js';
import { traceHttpRequest } from './http-request-spans.js';

/** The instrumentation scope of the gateway's own spans. */
const SCOPE_NAME = 'graphql-ai-gateway';

/** Tracing, once started. */
export interface Tracing {
  /** Give it to the generation service. */
  readonly generations: GenerationTracer;
  /** Handles one HTTP request inside its server span (see `http-request-spans.ts`). */
  traceRequest(request: IncomingMessage, response: ServerResponse, handle: () => Promise<void>): Promise<void>;
  /**
   * Exports the spans still waiting and stops; gives up after `timeoutMs` (an unreachable
   * collector never holds up a shutdown).
   */
  shutdown(timeoutMs: number): Promise<void>;
}

/** The package's version, for `service.version`; undefined when package.json cannot be read. */
function packageVersion(): string | undefined {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Starts tracing as configured. Export failures (collector down, refused) are logged at `warn`
 * by the SDK's diagnostics through `logger`; they never fail a request.
 */
export function startTracing(config: TracingConfig, logger: Logger): Tracing {
  const version = packageVersion();
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ 'service.name': config.serviceName, ...(version !== undefined && { 'service.version': version }) }));
  const exporter = config.protocol === 'http/json' ? new JsonTraceExporter({ url: config.tracesEndpoint }) : new ProtobufTraceExporter({ url: config.tracesEndpoint });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  // The SDK reports what goes wrong (an export that failed) through its diagnostics channel.
  const report = (message: string, ...details: unknown[]): void => logger.warn({ details: details.map(String) }, `tracing: ${message}`);
  diag.setLogger({ error: report, warn: report, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
  const tracer = provider.getTracer(SCOPE_NAME, version);
  const propagator = new W3CTraceContextPropagator();
  logger.info({ endpoint: config.tracesEndpoint, protocol: config.protocol, serviceName: config.serviceName }, 'tracing to an OTLP collector');

  return {
    generations: createGenerationTracer(tracer, propagator),
    traceRequest: (request, response, handle) => traceHttpRequest(tracer, propagator, request, response, handle),
    async shutdown(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
        timer.unref();
      });
      const outcome = await Promise.race([provider.shutdown().then(() => 'done' as const, (error: unknown) => error), gaveUp]);
      clearTimeout(timer);
      if (outcome === 'timeout') logger.warn({ timeoutMs }, 'tracing: spans not exported before shutdown (collector too slow or away)');
      else if (outcome !== 'done') logger.warn({ err: outcome }, 'tracing: exporting the last spans failed');
      diag.disable();
    },
  };
}
