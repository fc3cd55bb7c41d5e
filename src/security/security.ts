/**
 * The security layer of one app, built from `config.security`: API-key authentication for
 * GraphQL (HTTP, SSE and graphql-ws) and REST (`/v1`) — static keys, the master key and virtual
 * keys alike —, the GraphQL request body limit, the protection plugins for Yoga, the per-caller
 * limits on generation starts (a virtual key's own among them), and the admin operations on
 * virtual keys.
 *
 * Deny by default: every HTTP request needs a key except the public ones — `/healthz`, `/readyz`, the page
 * (`/`, `/index.html` and its four assets under `/assets/`), stored images (`/images/*`, `/media/*`:
 * content-addressed, unguessable names), GraphiQL's HTML page (its operations do need a key) and
 * CORS preflights (`OPTIONS`). A path is public only as sent: one that needs normalising
 * (`/images/../graphql`, `http://host/…`, `//graphql`) is not, since Yoga and the routes normalise
 * paths differently (Yoga also answers `/graphql/` and `//graphql`).
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Store } from '@envelop/rate-limiter';
import type { ExecutionResult, FormattedExecutionResult, GraphQLFormattedError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { SecurityConfig } from '../config.js';
import type { GenerationAccess } from '../generations/generation-access.js';
import type { Logger } from '../operations/logger.js';
import { apiKeyAdministration, type ApiKeyAdministration } from './api-key-administration.js';
import { Authenticator, virtualKeyRefusal, type AuthenticationResult, type Caller } from './authentication.js';
import { createGraphQLProtection } from './graphql-protection.js';
import { createPersistedOperations, type PersistedOperations } from './persisted-operations.js';
import { GenerationAdmission, type KeyLimitsSource } from './guarded-generations.js';
import { usePartialSuccessStatus } from './partial-success-status.js';
import { RateLimiter } from './rate-limiter.js';
import { RunningGenerationLimiter } from './running-generation-limiter.js';
import { SECURITY_ERROR_STATUS, SecurityError } from './security-error.js';
import type { TokenAccounting } from './token-accounting.js';
import { VirtualKeySockets, type KeySocket } from './virtual-key-sockets.js';
import type { VirtualKeys } from './virtual-keys.js';
import { requestIdOf, traceCarrierOf } from '../operations/request-context.js';
import type { UsageAccess, UsageReports } from '../operations/usage-reports.js';
import { usageAccessFor } from './usage-access.js';
import { RequestProperty } from '../operations/request-property.js';

/**
 * A refused HTTP request: the status, the stable code (`UNAUTHORIZED`, `DATABASE_UNAVAILABLE`,
 * `REQUEST_TOO_LARGE`), the message, the headers to send (`WWW-Authenticate`, `connection`), and
 * the API it was for, whose error format the answer takes: an OpenAI error body under `/v1`
 * (`rest`), a GraphQL error body elsewhere (`graphql`).
 */
export interface HttpRefusal {
  api: 'rest' | 'graphql';
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
}

/** The graphql-ws context `onWebSocketConnect` needs (the `ws` adapter's `extra`). */
export interface WebSocketConnectContext {
  connectionParams?: Readonly<Record<string, unknown>>;
  extra: { request: IncomingMessage; socket: KeySocket };
}

/** What the app uses of the security layer. */
export interface Security {
  /** Yoga plugins (persisted operations, graphql-armor, CSRF prevention, introspection off), for `createYoga({ plugins })`. */
  readonly plugins: Array<Plugin<Record<string, unknown>>>;
  /**
   * With `PERSISTED_OPERATIONS_FILE`, the only operations GraphQL runs: its Yoga plugin is the first
   * of {@link plugins}; the WebSocket server asks it for each Subscribe message's operation.
   * Undefined = any operation runs.
   */
  readonly persistedOperations: PersistedOperations | undefined;
  /**
   * Runs before the routes, for every request but the public ones: refuses a request without a
   * valid key (401; 503 when a virtual key cannot be looked up), and a body outside `/v1` larger than `maxRequestBodyBytes` (413; the body is
   * read and buffered here, so Yoga gets it whole; REST checks its own with the same limit);
   * remembers the caller of an accepted request for {@link generationsFor}. A refused request's body
   * is drained (and `connection: close` asked for when it had one), so an endless upload ends with
   * the connection. The caller writes the refusal in its API's error format (see `HttpRefusal`).
   * @returns the refusal, or undefined when the request goes on.
   */
  admitHttp(request: IncomingMessage): Promise<HttpRefusal | undefined>;
  /**
   * graphql-ws `onConnect`: checks `connectionParams.authorization` (`Bearer <key>`) or
   * `connectionParams.apiKey`. A refusal closes the socket with 4403 (1013, try again later, when a
   * virtual key cannot be looked up) and a reason naming what was wrong, and returns false. A socket
   * opened with a virtual key is closed with 4403 when the key is revoked or expires.
   */
  onWebSocketConnect(context: WebSocketConnectContext): Promise<boolean>;
  /**
   * The generation service as the caller of `request` (an HTTP request that passed `admitHttp`, or
   * the upgrade request of an accepted WebSocket) may use it: starts pass the size limits, the
   * running cap and the rate limit. For an unknown request while keys are required, starts are refused (401).
   */
  generationsFor(request: IncomingMessage | undefined): GenerationAccess;
  /** The admin operations on virtual keys as the caller of `request` may use them (see `api-key-administration.ts`). */
  apiKeysFor(request: IncomingMessage | undefined): ApiKeyAdministration;
  /** Stops the sweeps of virtual keys' sockets. */
  close(): void;
  /**
   * Usage reports as the caller of `request` may ask for them: `myUsage` its own, `usage` everyone's
   * for an admin (`admin-access.ts`). For an unknown request while keys are required, both are refused (401).
   */
  usageFor(request: IncomingMessage | undefined): UsageAccess;
  /**
   * graphql-ws `onNext`: a result whose errors carry Yoga's `http` extension (status and headers
   * meant for an HTTP response, which Yoga strips itself over HTTP and SSE) without it; undefined
   * (send as it is) for every other result, so token events cost nothing.
   */
  formatWebSocketResult(result: ExecutionResult): FormattedExecutionResult | undefined;
  /** Lines for the start-up log: authentication off (a warning), private-network downloads allowed (a warning). */
  readonly warnings: string[];
}

/** Dependencies of {@link createSecurity}. */
export interface SecurityDependencies {
  generations: GenerationAccess;
  /** Usage reports (refusing every report without a database). */
  usageReports: UsageReports;
  /** The GraphQL endpoint path (`/graphql`). */
  graphqlPath: string;
  /** Whether GraphiQL is served (its HTML page is then public). */
  graphiql: boolean;
  /** Where the rate limiter keeps its timestamps; default in memory (a `RedisRateLimitStore` shares them between instances). */
  rateLimitStore?: Store;
  /** Where the rate limiter reports a shared store that stops (and starts again) answering. */
  logger?: Pick<Logger, 'warn' | 'info'>;
  /** The virtual keys; absent without a database. */
  virtualKeys?: VirtualKeys;
  /** Whether a virtual key existed at start (authentication is then on; see `VirtualKeys.anyExist`). */
  virtualKeysExist?: boolean;
  /** Virtual keys' tokens per minute and budgets; absent = none. */
  tokens?: TokenAccounting;
  /** Completion tokens assumed for a chat request without `maxTokens` (`DEFAULT_MAX_TOKENS`, else `ESTIMATED_COMPLETION_TOKENS`). */
  defaultCompletionTokens?: number;
}

/** Paths served without a key, exactly as sent (besides the `/images/` and `/media/` prefixes). */
const PUBLIC_PATHS = new Set([
  '/',
  '/index.html',
  '/assets/graphql-ws.min.js',
  '/assets/admin-tab.js',
  '/assets/uplot.iife.min.js',
  '/assets/uplot.min.css',
  '/v1/openapi.json',
  '/healthz',
  '/readyz',
]);

/** The request's path as sent, without the query string or fragment. */
function rawPathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/** The path as WHATWG URL parsing normalises it (dot segments resolved, absolute-form URLs reduced to their path). */
function normalizedPathOf(request: IncomingMessage): string {
  try {
    return new URL(request.url ?? '/', 'http://gateway.invalid').pathname;
  } catch {
    return '';
  }
}

/** Whether the request is for a public path: as sent (no normalising needed) and one of {@link PUBLIC_PATHS} or under `/images/` or `/media/`. */
function isPublicRequest(request: IncomingMessage): boolean {
  const raw = rawPathOf(request);
  if (raw !== normalizedPathOf(request)) return false;
  return PUBLIC_PATHS.has(raw) || raw.startsWith('/images/') || raw.startsWith('/media/');
}

/** Whether a GET asks for GraphiQL's page (HTML, no operation in the query string). */
function isGraphiQLPageRequest(request: IncomingMessage): boolean {
  if (request.method !== 'GET') return false;
  if (!(request.headers.accept ?? '').includes('text/html')) return false;
  return !new URL(request.url ?? '/', 'http://gateway.invalid').searchParams.has('query');
}

/** `WWW-Authenticate` for a refused key (RFC 6750 §3: `invalid_token` when a key was sent but is not valid). */
function challenge(request: IncomingMessage, result: Extract<AuthenticationResult, { ok: false }>): Record<string, string> {
  if (result.code !== 'UNAUTHORIZED') return {};
  const keySent = request.headers.authorization !== undefined || request.headers['g4f-api-key'] !== undefined;
  return { 'www-authenticate': keySent ? 'Bearer realm="graphql-ai-gateway", error="invalid_token"' : 'Bearer realm="graphql-ai-gateway"' };
}

/** A WebSocket close reason fits 123 bytes. */
function closeReason(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.byteLength <= 123 ? text : bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD+$/, '') + '...';
}

/** Builds the security layer of one app. */
export function createSecurity(config: SecurityConfig, dependencies: SecurityDependencies): Security {
  const { virtualKeys } = dependencies;
  const authenticator = new Authenticator(config.apiKeyDigests, {
    trustedProxyHops: config.trustedProxyHops,
    ...(config.masterKeyDigest !== undefined && { masterKeyDigest: config.masterKeyDigest }),
    ...(virtualKeys && { virtualKeys }),
  });
  const keySockets = virtualKeys && new VirtualKeySockets({ keys: virtualKeys, intervalMs: virtualKeys.cacheTtlMs, ...(dependencies.logger && { logger: dependencies.logger }) });
  /** A virtual key's limits as they are now, read at each start (a revocation or a change applies to open sockets too). */
  const keyLimits: KeyLimitsSource | undefined = virtualKeys && {
    async limitsOf(caller) {
      if (caller.virtualKeyId === undefined) return undefined;
      let record;
      try {
        record = await virtualKeys.findById(caller.virtualKeyId);
      } catch {
        throw new SecurityError('DATABASE_UNAVAILABLE', 'The API key cannot be checked right now (the database does not answer); try again shortly.');
      }
      const refusal = record ? virtualKeyRefusal(record) : 'Unauthorized: the API key no longer exists.';
      if (refusal) throw new SecurityError('UNAUTHORIZED', refusal);
      return record!.limits;
    },
  };
  const admission = new GenerationAdmission({
    ...(keyLimits && { keyLimits }),
    ...(dependencies.tokens && { tokens: dependencies.tokens }),
    ...(dependencies.defaultCompletionTokens !== undefined && { defaultCompletionTokens: dependencies.defaultCompletionTokens }),
    rateLimiter: new RateLimiter({
      maxPerWindow: config.rateLimitPerMinute,
      windowMs: 60_000,
      ...(dependencies.rateLimitStore && { store: dependencies.rateLimitStore }),
      ...(dependencies.logger && { logger: dependencies.logger }),
    }),
    runningLimiter: new RunningGenerationLimiter(config.maxConcurrentGenerationsPerKey),
    inputLimits: {
      maxPromptCharacters: config.maxPromptCharacters,
      maxMessages: config.maxMessages,
      maxMessageCharacters: config.maxMessageCharacters,
    },
  });
  /** The caller of each accepted HTTP request and WebSocket upgrade request. */
  const callers = new RequestProperty<Caller>('caller');
  /** The generation service as the caller of each request, made once per request (see `generationsFor`). */
  const guardedServices = new RequestProperty<GenerationAccess>('generation service of the caller');
  /** The caller's usage reports and key administration, made once per request like the generation service. */
  const usageViews = new RequestProperty<UsageAccess>('usage reports of the caller');
  const keyAdministrations = new RequestProperty<ApiKeyAdministration>('key administration of the caller');
  const limit = config.maxRequestBodyBytes;
  /** The caller of an accepted request; without authentication, the client's address; undefined when keys are required and none was accepted. */
  const callerOf = (request: IncomingMessage | undefined): Caller | undefined =>
    (request && callers.get(request)) ?? (authenticator.enabled ? undefined : authenticator.anonymousCaller(request));

  /** Reads a GraphQL request body up to the limit and hands it to Yoga as `request.body`; refuses with 413 when it is larger. */
  const bufferGraphQLBody = async (request: IncomingMessage): Promise<HttpRefusal | undefined> => {
    const tooLarge = (): HttpRefusal => {
      request.resume(); // let the client finish sending, then close: an endless upload ends with the connection
      return { api: 'graphql', status: 413, code: 'REQUEST_TOO_LARGE', message: `The request body is larger than ${limit} bytes.`, headers: { connection: 'close' } };
    };
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > limit) return tooLarge();
      chunks.push(chunk);
    }
    // Yoga (through @whatwg-node/server) reads a pre-read `body` instead of the consumed stream.
    (request as IncomingMessage & { body?: unknown }).body = Readable.from([Buffer.concat(chunks)], { objectMode: false });
    return undefined;
  };

  const warnings: string[] = [];
  const authenticationOff = !authenticator.enabled && !dependencies.virtualKeysExist;
  if (authenticationOff) {
    warnings.push(
      'AUTHENTICATION IS OFF: no API_KEYS, API_KEYS_FILE or MASTER_KEY is configured and the database holds no virtual key, so anyone who can reach this server can use it ' +
        '(and spend the providers\' keys). Configure API keys before exposing it beyond this machine.',
    );
  }
  if (authenticationOff && config.trustedProxyHops === Number.POSITIVE_INFINITY) {
    warnings.push(
      'TRUST_PROXY=true: callers are told apart by the leftmost X-Forwarded-For address, which clients can write themselves; ' +
        'set TRUST_PROXY to the number of proxies in front of this server instead.',
    );
  }
  const persistedOperations = config.persistedOperations && createPersistedOperations(config.persistedOperations);
  if (persistedOperations && dependencies.graphiql) {
    warnings.push(
      `PERSISTED_OPERATIONS_FILE: only its ${persistedOperations.size} operations run, so GraphiQL (and the page at /) can run nothing of their own; set GRAPHIQL=false.`,
    );
  }
  if (config.allowPrivateNetworkDownloads) {
    warnings.push('ALLOW_PRIVATE_NETWORK_DOWNLOADS is on: image downloads may reach private and loopback addresses.');
  }

  return {
    plugins: [
      ...(persistedOperations ? [persistedOperations.plugin] : []),
      ...createGraphQLProtection({
        limits: {
          maxDepth: config.graphqlMaxDepth,
          maxCost: config.graphqlMaxCost,
          maxAliases: config.graphqlMaxAliases,
          maxTokens: config.graphqlMaxTokens,
          maxDirectives: config.graphqlMaxDirectives,
        },
        csrfPrevention: config.csrfPrevention,
        introspection: config.introspection,
      }),
      // Several aliased starts in one mutation: admitted ones answer 200 with their ids beside the refused ones' errors.
      usePartialSuccessStatus() as Plugin<Record<string, unknown>>,
    ],
    persistedOperations,
    warnings,

    async admitHttp(request) {
      if (request.method === 'OPTIONS') return undefined; // CORS preflights carry no credentials and run nothing
      if (isPublicRequest(request)) return undefined;
      const path = normalizedPathOf(request);
      const rest = path === '/v1' || path.startsWith('/v1/');
      if (!rest && dependencies.graphiql && path === dependencies.graphqlPath && isGraphiQLPageRequest(request)) return undefined;
      const result = await authenticator.authenticateRequest(request, { allowGpt4freeHeader: rest });
      if (!result.ok) {
        // An unread body is drained, and the connection closes after the answer, so an endless upload ends with it.
        const hasBody = Number(request.headers['content-length']) > 0 || request.headers['transfer-encoding'] !== undefined;
        request.resume();
        return {
          api: rest ? 'rest' : 'graphql',
          status: SECURITY_ERROR_STATUS[result.code],
          code: result.code,
          message: result.message,
          headers: { ...challenge(request, result), ...(hasBody && { connection: 'close' }) },
        };
      }
      callers.set(request, result.caller);
      if (!rest && request.method !== 'GET' && request.method !== 'HEAD') return bufferGraphQLBody(request);
      return undefined;
    },

    async onWebSocketConnect({ connectionParams, extra }) {
      const result = await authenticator.authenticateConnectionParams(connectionParams, extra.request);
      if (!result.ok) {
        // 1013 (Try Again Later, in IANA's WebSocket close code registry): the key may be fine, the database did not answer.
        extra.socket.close(result.code === 'DATABASE_UNAVAILABLE' ? 1013 : 4403, closeReason(result.message));
        return false;
      }
      callers.set(extra.request, result.caller);
      if (result.virtualKey) keySockets?.add(result.virtualKey, extra.socket);
      return true;
    },

    formatWebSocketResult(result) {
      if (!result.errors?.some((error) => error.extensions?.http !== undefined)) return undefined;
      const errors = result.errors.map((error): GraphQLFormattedError => {
        const formatted = error.toJSON();
        if (formatted.extensions?.http === undefined) return formatted;
        const { http: _http, ...extensions } = formatted.extensions;
        return { ...formatted, extensions };
      });
      return { ...result, errors } as FormattedExecutionResult;
    },

    generationsFor(request) {
      // One view per request: every subscription of a graphql-ws connection (whose context carries
      // the upgrade request) shares its connection's, instead of building one per operation.
      const cached = request && guardedServices.get(request);
      if (cached) return cached;
      const caller = callerOf(request);
      const requestId = request && requestIdOf(request);
      const trace = request && traceCarrierOf(request);
      const origin = { ...(requestId !== undefined && { requestId }), ...(trace !== undefined && { trace }) };
      const guarded = admission.forCaller(dependencies.generations, caller, origin, !authenticator.enabled);
      if (request) guardedServices.set(request, guarded);
      return guarded;
    },

    usageFor(request) {
      const cached = request && usageViews.get(request);
      if (cached) return cached;
      const view = usageAccessFor(dependencies.usageReports, callerOf(request), authenticator.enabled);
      if (request) usageViews.set(request, view);
      return view;
    },

    apiKeysFor(request) {
      const cached = request && keyAdministrations.get(request);
      if (cached) return cached;
      const administration = apiKeyAdministration(request && callers.get(request), virtualKeys, authenticator.hasMasterKey);
      if (request) keyAdministrations.set(request, administration);
      return administration;
    },

    close() {
      keySockets?.stop();
    },
  };
}
