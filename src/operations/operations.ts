/**
 * What operating the gateway needs, in one object the app wires in: the logger, the metrics, the
 * generation observer that feeds both, request ids and request logs, `/healthz`, `/readyz` and
 * `/metrics`, and the "shutting down" state of a graceful shutdown.
 *
 * `/healthz` and `/readyz` are the liveness and readiness probes of Kubernetes
 * (https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/):
 * - `/healthz` (liveness: restart the process when it fails) answers 200 `{"status":"ok"}` while
 *   the process serves, whatever its dependencies do — a restart would not bring Redis back;
 * - `/readyz` (readiness: send traffic only while it passes) answers 200 `{"status":"ok"}` once
 *   the start is done ({@link Operations.markStarted}) and no provider is still loading
 *   (`Provider.loading`: 503 `{"status":"starting"}`, with the reason while a provider loads), and
 *   while every readiness check passes ({@link Operations.addReadinessCheck}: Redis and the database
 *   reachable, usage rows writable; 503 `{"status":"degraded","reason":"…"}`, the answer `/healthz`
 *   gave before there was a `/readyz`). The instance keeps serving what does not need the failed part.
 * Providers with background work to report (`Provider.status`, e.g. a default model downloading,
 * or why its download failed) add `"providers": {"<id>": "<one line>"}` to both answers, without
 * changing them.
 *
 * During a graceful shutdown (after {@link Operations.beginShutdown}) the server keeps listening
 * until the app closes it, so load balancers can see the drain and clients can still read what
 * they started, but:
 * - `/healthz` and `/readyz` answer 503 `{"status":"shutting down"}`;
 * - every HTTP response says `connection: close`, so keep-alive clients move elsewhere;
 * - new WebSocket connections are refused with HTTP 503 (open ones stay until the app closes them with 1001);
 * - new generations are refused by the generation service (`SERVICE_UNAVAILABLE`, REST 503).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config.js';
import type { HttpRoute } from '../http-route.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';
import { createGenerationLogging } from './generation-logging.js';
import { combineObservers, type GenerationObserver } from '../generations/generation-observer.js';
import { createLogger, createYogaLogger, type Logger, type YogaLogger } from './logger.js';
import { GatewayMetrics, routeLabel } from './metrics.js';
import { assignRequestId, REQUEST_ID_HEADER } from './request-context.js';

/** What {@link createOperations} needs. */
export interface OperationsOptions {
  config: Pick<Config, 'logLevel' | 'metricsEnabled'>;
  /** The providers, for the queue depth and circuit state metrics. */
  registry: ProviderRegistry;
  /** The logger to use; default: a new one at `config.logLevel` on standard output. */
  logger?: Logger;
}

/** `[id, status]` of each provider that reports background work (see `Provider.status`). */
function providerStatuses(registry: ProviderRegistry): Array<[string, string]> {
  return registry.list().flatMap((provider) => {
    const status = provider.status?.();
    return status === undefined ? [] : [[provider.id, status] as [string, string]];
  });
}

/**
 * One readiness check of `/readyz`: undefined while what it checks is fine, else why not (one
 * line, no secrets). An asynchronous check bounds its own wait (see `database-check.ts`); one that
 * rejects counts as failing, with the error's message.
 */
export type HealthCheck = () => string | undefined | Promise<string | undefined>;

/** Why `check` fails (a rejection's message), or undefined while it passes. */
async function reasonOf(check: HealthCheck): Promise<string | undefined> {
  try {
    return await check();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** The operations side of one app; see the module comment. */
export interface Operations {
  readonly logger: Logger;
  /** Undefined when `METRICS_ENABLED` is false. */
  readonly metrics: GatewayMetrics | undefined;
  /** Feeds the metrics and writes the generation log lines; give it to the generation service. */
  readonly observer: GenerationObserver;
  /** For Yoga's `logging` option. */
  readonly yogaLogger: YogaLogger;
  /** `/healthz`, `/readyz` and (when metrics are on) `GET /metrics`. */
  readonly route: HttpRoute;
  /** Whether a graceful shutdown has begun. */
  readonly shuttingDown: boolean;
  /**
   * Handles one HTTP request: gives it a request id (echoed in `x-request-id`; `requestIdOf(request)`
   * in request-context.ts returns it while `handle` works), and once the response is over counts it and logs one `request completed` line.
   */
  track(request: IncomingMessage, response: ServerResponse, handle: () => Promise<void>): Promise<void>;
  /** For `ws`'s `verifyClient`: refuses new WebSocket connections with 503 once shutting down. */
  verifyWebSocketClient(info: unknown, callback: (accept: boolean, code?: number, message?: string) => void): void;
  /** Starts the graceful shutdown state (idempotent). */
  beginShutdown(): void;
  /** Adds a check `/readyz` runs on every request; the reasons of failing checks are joined with `; `. */
  addReadinessCheck(check: HealthCheck): void;
  /** Marks the start done (listening, Redis connected, providers started): `/readyz` may answer 200 from now on. */
  markStarted(): void;
}

/** Builds the operations side of an app. */
export function createOperations(options: OperationsOptions): Operations {
  const logger = options.logger ?? createLogger({ level: options.config.logLevel });
  const metrics = options.config.metricsEnabled ? new GatewayMetrics(options.registry) : undefined;
  let shuttingDown = false;
  let started = false;
  const readinessChecks: HealthCheck[] = [];

  /** The answer of `/healthz` or `/readyz` (see the module comment). */
  const probeAnswer = async (path: '/healthz' | '/readyz'): Promise<{ status: number; body: Record<string, unknown> }> => {
    if (shuttingDown) return { status: 503, body: { status: 'shutting down' } };
    const providers = providerStatuses(options.registry);
    const notes = providers.length > 0 ? { providers: Object.fromEntries(providers) } : {};
    if (path === '/healthz') return { status: 200, body: { status: 'ok', ...notes } };
    const failing = (await Promise.all(readinessChecks.map(reasonOf))).filter((reason) => reason !== undefined);
    const loading = options.registry.list().flatMap((provider) => {
      const line = provider.loading?.();
      return line === undefined ? [] : [`${provider.id}: ${line}`];
    });
    if (failing.length > 0) return { status: 503, body: { status: 'degraded', reason: [...failing, ...loading].join('; '), ...notes } };
    if (!started || loading.length > 0) {
      return { status: 503, body: { status: 'starting', ...(loading.length > 0 && { reason: loading.join('; ') }), ...notes } };
    }
    return { status: 200, body: { status: 'ok', ...notes } };
  };

  const route: HttpRoute = async (request, response) => {
    const path = pathOf(request);
    if (path === '/healthz' || path === '/readyz') {
      request.resume();
      const { status, body } = await probeAnswer(path);
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
      return true;
    }
    if (path === '/metrics' && metrics && (request.method === 'GET' || request.method === 'HEAD')) {
      request.resume();
      const { contentType, body } = await metrics.render();
      response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
      return true;
    }
    return false;
  };

  return {
    logger,
    metrics,
    observer: combineObservers(metrics, createGenerationLogging(logger)),
    yogaLogger: createYogaLogger(logger),
    route,
    get shuttingDown() {
      return shuttingDown;
    },

    track(request, response, handle) {
      const startedAt = performance.now();
      const requestId = assignRequestId(request);
      response.setHeader(REQUEST_ID_HEADER, requestId);
      if (shuttingDown) response.setHeader('connection', 'close');
      response.once('close', () => {
        const path = pathOf(request);
        const label = routeLabel(path);
        const status = response.statusCode;
        metrics?.countHttpRequest(label, request.method, status);
        const fields = {
          requestId,
          method: request.method,
          path,
          route: label,
          status,
          durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
          ...(!response.writableFinished && { clientGone: true }),
        };
        // Probes come every few seconds: keep them out of the info log.
        if (label === 'healthz' || label === 'readyz' || label === 'metrics') logger.debug(fields, 'request completed');
        else logger.info(fields, 'request completed');
      });
      return handle();
    },

    verifyWebSocketClient(_info, callback) {
      if (shuttingDown) callback(false, 503, 'Service Unavailable: shutting down');
      else callback(true);
    },

    beginShutdown() {
      shuttingDown = true;
    },

    addReadinessCheck(check) {
      readinessChecks.push(check);
    },

    markStarted() {
      started = true;
    },
  };
}

/** The request's path without query string (which may hold tokens, so it is never logged). */
function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}
