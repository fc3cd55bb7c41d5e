/**
 * Prometheus metrics (`GET /metrics`) with `prom-client`, on a registry of their own (never the
 * global one, so several apps in one process — tests — do not collide). Default Node.js metrics
 * (`process_*`, `nodejs_*`) are included.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `gateway_http_requests_total` | counter | `route` (a fixed set, see {@link HttpRouteLabel}), `method`, `status` |
 * | `gateway_generations_total` | counter | `kind`, `provider`, `model`, `status` (completed, failed, cancelled) |
 * | `gateway_generation_time_to_first_token_seconds` | histogram | `kind`, `provider` |
 * | `gateway_generation_tokens_per_second` | histogram | `provider` |
 * | `gateway_active_subscriptions` | gauge | — |
 * | `gateway_running_generations` | gauge | — |
 * | `gateway_queue_depth` | gauge | `provider` (providers that queue: `llama-cpp`) |
 * | `gateway_provider_circuit_state` | gauge | `provider` (0 closed, 1 half-open, 2 open) |
 *
 * Labels never carry secrets or free text: routes and methods come from fixed sets, provider ids
 * and model ids from the configuration (model values are capped per provider, see {@link MAX_MODELS_PER_PROVIDER}).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GenerationRecord } from '../generations/generation-records.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';
import type { GenerationObserver } from '../generations/generation-observer.js';

/** The values of the `route` label of `gateway_http_requests_total`. */
export type HttpRouteLabel =
  | 'graphql'
  | 'rest_chat'
  | 'rest_images'
  | 'rest_models'
  | 'rest_providers'
  | 'images'
  | 'page'
  | 'healthz'
  | 'readyz'
  | 'metrics'
  | 'other';

/** HTTP methods counted by name; any other method is counted as `other`. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Most distinct `model` label values kept per provider; later ones are counted as `other`. */
export const MAX_MODELS_PER_PROVIDER = 50;

/** The `route` label for a request path (without the query string). */
export function routeLabel(path: string): HttpRouteLabel {
  if (path === '/graphql' || path.startsWith('/graphql/')) return 'graphql';
  if (path === '/healthz') return 'healthz';
  if (path === '/readyz') return 'readyz';
  if (path === '/metrics') return 'metrics';
  if (path.startsWith('/v1/chat/completions')) return 'rest_chat';
  if (path.startsWith('/v1/images/')) return 'rest_images';
  if (path === '/v1/models' || path.startsWith('/v1/models/')) return 'rest_models';
  if (path === '/v1/providers' || path.startsWith('/v1/providers/')) return 'rest_providers';
  if (path.startsWith('/images/') || path.startsWith('/media/')) return 'images';
  if (path === '/' || path === '/index.html' || path.startsWith('/assets/')) return 'page';
  return 'other';
}

/** The `method` label: the method's name when it is a common one, else `other`. */
export function methodLabel(method: string | undefined): string {
  const upper = (method ?? '').toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : 'other';
}

/** The value of `gateway_provider_circuit_state` for a breaker state. */
const CIRCUIT_STATE_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const;

/** The gateway's metrics; also the generation observer that feeds the generation metrics. */
export class GatewayMetrics implements GenerationObserver {
  /** The registry `/metrics` renders. */
  readonly registry = new Registry();

  private readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  private readonly generations: Counter<'kind' | 'provider' | 'model' | 'status'>;
  private readonly timeToFirstToken: Histogram<'kind' | 'provider'>;
  private readonly tokensPerSecond: Histogram<'provider'>;
  private readonly activeSubscriptions: Gauge;
  private readonly runningGenerations: Gauge;
  /** When each running generation received its first content (absent until then). */
  private readonly firstContentAt = new WeakMap<GenerationRecord, number>();
  /** Text deltas each running chat generation received (tokens when the provider reports no usage). */
  private readonly deltaCounts = new WeakMap<GenerationRecord, number>();
  /** Model label values seen, per provider. */
  private readonly modelLabels = new Map<string, Set<string>>();

  /** @param providers the providers (for queue depth) and their circuit breaker (for circuit state). */
  constructor(providers: ProviderRegistry) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: 'gateway_http_requests_total',
      help: 'HTTP requests answered, by route (a fixed set), method and status code.',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.generations = new Counter({
      name: 'gateway_generations_total',
      help: 'Generations ended, by kind (chat, image), provider, model and final status (completed, failed, cancelled).',
      labelNames: ['kind', 'provider', 'model', 'status'],
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'gateway_generation_time_to_first_token_seconds',
      help: 'Time from the start of a generation to its first content (first text delta or first image), seconds.',
      labelNames: ['kind', 'provider'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.tokensPerSecond = new Histogram({
      name: 'gateway_generation_tokens_per_second',
      help: 'Completed chat generations: completion tokens (from usage, else the number of text deltas) divided by the whole generation time.',
      labelNames: ['provider'],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
      registers,
    });
    this.activeSubscriptions = new Gauge({
      name: 'gateway_active_subscriptions',
      help: 'Subscribers following generation events now (graphql-ws, GraphQL over SSE, REST replies).',
      registers,
    });
    this.runningGenerations = new Gauge({
      name: 'gateway_running_generations',
      help: 'Generations running on this instance now.',
      registers,
    });
    new Gauge({
      name: 'gateway_queue_depth',
      help: 'Requests waiting for a provider slot (llama-cpp: waiting for a free context sequence), by provider.',
      labelNames: ['provider'],
      registers,
      collect() {
        for (const provider of providers.list()) {
          const depth = provider.queueDepth?.();
          if (depth !== undefined) this.set({ provider: provider.id }, depth);
        }
      },
    });
    new Gauge({
      name: 'gateway_provider_circuit_state',
      help: 'Circuit breaker state by provider: 0 closed, 1 half-open, 2 open (absent when the breaker is off).',
      labelNames: ['provider'],
      registers,
      // Async: with Redis the state is the shared one, read at scrape time.
      async collect() {
        const breaker = providers.breaker;
        if (!breaker) return;
        const states = await Promise.all(providers.list().map(async (provider) => [provider.id, (await breaker.state(provider.id)).state] as const));
        for (const [provider, state] of states) this.set({ provider }, CIRCUIT_STATE_VALUES[state]);
      },
    });
  }

  /**
   * Adds the usage recorder's metrics: `gateway_usage_rows_waiting` (rows waiting for the database)
   * and `gateway_usage_rows_dropped_total` (rows dropped because too many waited), read at scrape time.
   */
  watchUsageRecorder(stats: () => { waiting: number; dropped: number }): void {
    new Gauge({
      name: 'gateway_usage_rows_waiting',
      help: 'Usage rows (one per ended generation) waiting to be written to the database.',
      registers: [this.registry],
      collect() {
        this.set(stats().waiting);
      },
    });
    new Counter({
      name: 'gateway_usage_rows_dropped_total',
      help: 'Usage rows dropped because the database could not be written and USAGE_QUEUE_MAX rows already waited.',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(stats().dropped);
      },
    });
  }

  /** Counts one answered HTTP request. */
  countHttpRequest(route: HttpRouteLabel, method: string | undefined, status: number): void {
    this.httpRequests.inc({ route, method: methodLabel(method), status: String(status) });
  }

  /** The text exposition of every metric, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Counts the generation as running. */
  generationStarted(): void {
    this.runningGenerations.inc();
  }

  /** The first call per generation observes its time to first token; chat deltas are counted for the token rate. */
  contentReceived(record: GenerationRecord): void {
    if (!this.firstContentAt.has(record)) {
      const now = Date.now();
      this.firstContentAt.set(record, now);
      this.timeToFirstToken.observe({ kind: record.kind, provider: record.provider }, Math.max(0, now - record.createdAt.getTime()) / 1000);
    }
    if (record.kind === 'chat') this.deltaCounts.set(record, (this.deltaCounts.get(record) ?? 0) + 1);
  }

  /** Counts the ended generation by status and, for a completed chat, observes its tokens per second. */
  generationFinished(record: GenerationRecord): void {
    this.runningGenerations.dec();
    this.generations.inc({ kind: record.kind, provider: record.provider, model: this.modelLabel(record.provider, record.model), status: record.status });
    const deltas = this.deltaCounts.get(record);
    // Kept generations outlive this: their entries go now (see generation-logging.ts).
    this.firstContentAt.delete(record);
    this.deltaCounts.delete(record);
    if (record.kind !== 'chat' || record.status !== 'completed') return;
    const tokens = record.usage?.completionTokens ?? deltas ?? 0;
    const seconds = ((record.finishedAt ?? new Date()).getTime() - record.createdAt.getTime()) / 1000;
    if (tokens > 0 && seconds > 0) this.tokensPerSecond.observe({ provider: record.provider }, tokens / seconds);
  }

  /** One more subscriber following events. */
  subscriptionOpened(): void {
    this.activeSubscriptions.inc();
  }

  /** One subscriber fewer. */
  subscriptionClosed(): void {
    this.activeSubscriptions.dec();
  }

  /** The model as a label value: as it is for the first {@link MAX_MODELS_PER_PROVIDER} models of a provider, `other` after. */
  private modelLabel(provider: string, model: string): string {
    let seen = this.modelLabels.get(provider);
    if (!seen) this.modelLabels.set(provider, (seen = new Set()));
    if (seen.has(model)) return model;
    if (seen.size >= MAX_MODELS_PER_PROVIDER) return 'other';
    seen.add(model);
    return model;
  }
}
