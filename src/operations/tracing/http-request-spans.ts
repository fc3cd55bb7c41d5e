/**
 * One OpenTelemetry server span per HTTP request the gateway answers, continuing the caller's
 * trace when it sends W3C Trace Context headers (`traceparent`; https://www.w3.org/TR/trace-context/).
 * The span's own context is kept on the request as headers (`setTraceCarrier`), so the generation
 * the request starts is the span's child; no context manager is involved (see
 * `generation-spans.ts`). The span ends when the response closes (a streamed reply included).
 *
 * Names and attributes follow the HTTP semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/http/http-spans/): span `{method} {http.route}`
 * (`{method}` alone for paths that are no route of the gateway), `http.request.method`,
 * `url.path` (never the query string, which may hold a key), `url.scheme`, `http.route`,
 * `http.response.status_code`, `client.address`, `user_agent.original`,
 * `network.protocol.version`, and `error.type` with an error status for 5xx answers.
 * WebSocket upgrades are not HTTP requests here: an operation over graphql-ws starts its own trace.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type TextMapPropagator, type Tracer } from '@opentelemetry/api';
import { setTraceCarrier } from '../request-context.js';

/** Paths that are routes as they are. */
const STATIC_ROUTES = new Set([
  '/',
  '/graphql',
  '/healthz',
  '/readyz',
  '/metrics',
  '/v1/chat/completions',
  '/v1/images/generations',
  '/v1/images/generate',
  '/v1/models',
  '/v1/providers',
  '/v1/usage',
  '/v1/openapi.json',
]);

/** Routes with one variable part: a path that starts with the prefix is the template. */
const TEMPLATE_ROUTES: Array<[prefix: string, template: string]> = [
  ['/v1/models/', '/v1/models/{model}'],
  ['/v1/providers/', '/v1/providers/{provider}'],
  ['/images/', '/images/{file}'],
  ['/media/', '/media/{file}'],
  ['/assets/', '/assets/{file}'],
];

/** `http.route` of a path: the gateway's route template, or undefined for a path it does not serve. */
export function httpRouteOf(path: string): string | undefined {
  if (STATIC_ROUTES.has(path)) return path;
  return TEMPLATE_ROUTES.find(([prefix]) => path.startsWith(prefix) && path.length > prefix.length)?.[1];
}

/** A request method as `http.request.method` wants it: a known method, else `_OTHER`. */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/**
 * Opens the request's server span (see the module comment), then handles it.
 * @returns what `handle` returns; a rejection ends nothing here (the response's close ends the span).
 */
export function traceHttpRequest(
  tracer: Tracer,
  propagator: TextMapPropagator,
  request: IncomingMessage,
  response: ServerResponse,
  handle: () => Promise<void>,
): Promise<void> {
  const parent = propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter);
  const url = request.url ?? '/';
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const route = httpRouteOf(path);
  const method = KNOWN_METHODS.has(request.method ?? '') ? request.method! : '_OTHER';
  const userAgent = request.headers['user-agent'];
  const span = tracer.startSpan(
    route === undefined ? method : `${method} ${route}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': method,
        'url.path': path,
        'url.scheme': 'encrypted' in request.socket && request.socket.encrypted ? 'https' : 'http',
        'network.protocol.version': request.httpVersion,
        ...(route !== undefined && { 'http.route': route }),
        ...(request.socket.remoteAddress !== undefined && { 'client.address': request.socket.remoteAddress }),
        ...(userAgent !== undefined && { 'user_agent.original': userAgent }),
      },
    },
    parent,
  );
  response.once('close', () => {
    const status = response.statusCode;
    span.setAttribute('http.response.status_code', status);
    if (status >= 500) {
      span.setAttribute('error.type', String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  });
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(parent, span), carrier, defaultTextMapSetter);
  setTraceCarrier(request, carrier);
  return handle();
}
