/**
 * Settings of OpenTelemetry tracing (`docs/operations.md#tracing`): the standard `OTEL_*` variables
 * the gateway reads itself, to decide whether to trace and where to send spans. Tracing is on
 * when an OTLP endpoint is set and `OTEL_SDK_DISABLED` is not `true`. The OpenTelemetry SDK reads
 * the rest of the standard variables (sampler, batch sizes, exporter headers, timeout,
 * compression, resource attributes) from the environment itself. Names and meanings are the
 * specification's: https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
 * and https://opentelemetry.io/docs/specs/otel/protocol/exporter/.
 */
import { ConfigError, derived, setting } from './setting.js';
import { booleanString, httpUrl, text } from './value-schemas.js';

/** OTLP transports the gateway exports spans with (gRPC is not one of them). */
export const TRACE_PROTOCOLS = ['http/protobuf', 'http/json'] as const;

/** One of {@link TRACE_PROTOCOLS}. */
export type TraceProtocol = (typeof TRACE_PROTOCOLS)[number];

/** Where and how spans are exported, when tracing is on. */
export interface TracingConfig {
  /** The full URL spans are POSTed to, e.g. `http://127.0.0.1:4318/v1/traces`. */
  tracesEndpoint: string;
  protocol: TraceProtocol;
  /** `service.name` of every span's resource. */
  serviceName: string;
}

/** A protocol value: one of {@link TRACE_PROTOCOLS}, or `grpc`, refused with a clear line later. */
const protocolSchema = (name: string) => text().refine((value) => [...TRACE_PROTOCOLS, 'grpc'].includes(value), { error: `${name} must be http/protobuf or http/json` });

const endpoint = setting({
  name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  schema: httpUrl,
  documentedDefault: '— (no tracing)',
  description:
    'OTLP/HTTP collector base URL (`http://127.0.0.1:4318`); spans go to `{base}/v1/traces`. Setting it turns [tracing](operations.md#tracing) on',
});

const tracesEndpoint = setting({
  name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  schema: httpUrl,
  documentedDefault: '—',
  description: 'full URL spans are sent to, used as given; wins over `OTEL_EXPORTER_OTLP_ENDPOINT` and turns tracing on too',
});

const protocol = setting({
  name: 'OTEL_EXPORTER_OTLP_PROTOCOL',
  schema: protocolSchema,
  default: 'http/protobuf',
  description: 'OTLP transport: `http/protobuf` or `http/json` (`grpc` is not supported)',
});

const tracesProtocol = setting({
  name: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  schema: protocolSchema,
  documentedDefault: '`OTEL_EXPORTER_OTLP_PROTOCOL`',
  description: 'the same for traces only',
});

const serviceName = setting({
  name: 'OTEL_SERVICE_NAME',
  schema: text,
  default: 'graphql-ai-gateway',
  description: '`service.name` of the spans',
});

const disabled = setting({
  name: 'OTEL_SDK_DISABLED',
  schema: booleanString,
  default: false,
  description: '`true` turns tracing off even with an endpoint set',
});

/** The tracing configuration, or undefined when tracing is off. */
export const tracingSettings = derived(
  { endpoint, tracesEndpoint, protocol, tracesProtocol, serviceName, disabled },
  (values): TracingConfig | undefined => {
    const url = values.tracesEndpoint ?? (values.endpoint === undefined ? undefined : `${values.endpoint}/v1/traces`);
    if (url === undefined || values.disabled) return undefined;
    const chosen = values.tracesProtocol ?? values.protocol;
    if (chosen === 'grpc') {
      throw new ConfigError(
        `Invalid configuration: ${values.tracesProtocol === undefined ? protocol.name : tracesProtocol.name}: grpc is not supported; use http/protobuf (port 4318 on an OpenTelemetry Collector)`,
      );
    }
    return { tracesEndpoint: url, protocol: chosen as TraceProtocol, serviceName: values.serviceName };
  },
);
