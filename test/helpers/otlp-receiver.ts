/**
 * A local OTLP/HTTP trace receiver: a real `node:http` server on 127.0.0.1 (random port) that
 * takes `POST /v1/traces` as an OpenTelemetry Collector does
 * (https://opentelemetry.io/docs/specs/otlp/#otlphttp), in both encodings — `application/json`
 * (OTLP/JSON: ids as hex strings, enums as numbers) and `application/x-protobuf` (decoded with
 * protobufjs from the fields of opentelemetry-proto's `trace.proto` written out below) — and
 * answers 200 with an empty `ExportTraceServiceResponse`. Every span it gets is kept, decoded
 * into one shape; `waitFor` resolves once the spans received satisfy a condition.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

/** The parts of opentelemetry-proto (v1) `collector/trace/v1/trace_service.proto` and `trace/v1/trace.proto` the tests read. */
const TRACE_PROTO = `
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message InstrumentationScope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
  repeated Event events = 11; Status status = 15;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; } }
message ArrayValue { repeated AnyValue values = 1; }
`;

const ExportTraceServiceRequest = protobuf.parse(TRACE_PROTO, { keepCase: false }).root.lookupType('ExportTraceServiceRequest');

/** OTLP span kinds (`Span.SpanKind`). */
export const OTLP_SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
/** OTLP status codes (`Status.StatusCode`). */
export const OTLP_STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;

/** One span as received, whatever the encoding. Ids are lower-case hex; `parentSpanId` is '' for a root span. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  status: { code: number; message?: string };
  resource: Record<string, unknown>;
  scope: string;
  /** The Content-Type of the request that carried it. */
  contentType: string;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT` (the base `OTEL_EXPORTER_OTLP_ENDPOINT` takes). */
  endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Resolves with the spans once `condition(spans)` holds, checked now and after each export; rejects after `timeoutMs`. */
  waitFor(condition: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

type RawValue = Record<string, unknown> | undefined;

/** An OTLP `AnyValue` (JSON or decoded protobuf, camel-cased) as a plain value. */
function plainValue(value: RawValue): unknown {
  if (!value) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue as string | number);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('arrayValue' in value) return ((value.arrayValue as { values?: RawValue[] }).values ?? []).map(plainValue);
  return undefined;
}

function plainAttributes(attributes: Array<{ key: string; value?: RawValue }> | undefined): Record<string, unknown> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, plainValue(value)]));
}

/** A protobuf `bytes` id (Uint8Array) or a JSON hex id as lower-case hex. */
function hexId(id: unknown): string {
  if (id === undefined || id === null) return '';
  if (typeof id === 'string') return id.toLowerCase();
  return Buffer.from(id as Uint8Array).toString('hex');
}

interface RawSpan {
  traceId: unknown;
  spanId: unknown;
  parentSpanId?: unknown;
  name: string;
  kind?: number;
  attributes?: Array<{ key: string; value?: RawValue }>;
  events?: Array<{ name: string; attributes?: Array<{ key: string; value?: RawValue }> }>;
  status?: { code?: number; message?: string };
}

interface RawRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value?: RawValue }> };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: RawSpan[] }>;
  }>;
}

function decode(body: Buffer, contentType: string): RawRequest {
  if (contentType.startsWith('application/json')) return JSON.parse(body.toString('utf8')) as RawRequest;
  if (contentType.startsWith('application/x-protobuf')) {
    return ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(body), { longs: String, defaults: false }) as RawRequest;
  }
  throw new Error(`unexpected Content-Type ${contentType}`);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Starts a receiver on a free port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const listeners = new Set<() => void>();
  const server = createServer((request, response) => {
    void (async () => {
      const body = await readBody(request);
      const contentType = request.headers['content-type'] ?? '';
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      const decoded = decode(body, contentType);
      for (const resourceSpans of decoded.resourceSpans ?? []) {
        const resource = plainAttributes(resourceSpans.resource?.attributes);
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            spans.push({
              traceId: hexId(span.traceId),
              spanId: hexId(span.spanId),
              parentSpanId: hexId(span.parentSpanId),
              name: span.name,
              kind: span.kind ?? 0,
              attributes: plainAttributes(span.attributes),
              events: (span.events ?? []).map((event) => ({ name: event.name, attributes: plainAttributes(event.attributes) })),
              status: { code: span.status?.code ?? 0, ...(span.status?.message && { message: span.status.message }) },
              resource,
              scope: scopeSpans.scope?.name ?? '',
              contentType,
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': contentType.startsWith('application/json') ? 'application/json' : 'application/x-protobuf' });
      response.end(contentType.startsWith('application/json') ? '{}' : undefined);
      for (const listener of listeners) listener();
    })().catch((error: unknown) => {
      response.writeHead(400).end(String(error));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    waitFor(condition, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!condition(spans)) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(spans);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`the spans received never met the condition: ${JSON.stringify(spans.map((span) => span.name))}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
