/**
 * What an OpenAI-compatible upstream serves and whether it is up: the configured models or those
 * `GET {baseURL}/models` lists (`docs/protocols.md` §2), the configured image models, and the
 * availability probe on the same endpoint.
 */
import { cacheAvailability, probeTimeoutFor, probeUnavailability, reuseWhileFresh, sendProbe } from '../cached-availability.js';
import { describeError, type ProviderErrors } from '../http-errors.js';
import type { Availability, ModelCapability, ModelDescriptor } from '../provider.js';
import { openAIModelListSchema } from './openai-compatible-api.js';
import type { OpenAICompatibleEndpoints } from './openai-compatible-endpoints.js';
import type { OpenAICompatibleUpstream } from './openai-compatible-upstream.js';

/**
 * The capabilities of an OpenAI-compatible chat model: chat, and every chat feature (tools, vision,
 * JSON schemas, reasoning). The upstream is the authority on what a model can do — `GET /models`
 * does not say — and answers a request it cannot serve with its own 400 (`UPSTREAM_BAD_REQUEST`),
 * so the gateway passes every feature on rather than guess.
 */
export const OPENAI_COMPATIBLE_CHAT_CAPABILITIES: readonly ModelCapability[] = ['chat', 'tools', 'vision', 'json-schema', 'reasoning'];

/** The capabilities of a model served for chat and images: {@link OPENAI_COMPATIBLE_CHAT_CAPABILITIES} with `image`. */
const CHAT_AND_IMAGE_CAPABILITIES: readonly ModelCapability[] = ['chat', 'image', ...OPENAI_COMPATIBLE_CHAT_CAPABILITIES.slice(1)];

/** How long a discovered model list is reused, ms. */
const MODEL_LIST_CACHE_MS = 60_000;
/** How long a failed model discovery is remembered before trying again, ms. */
const MODEL_LIST_FAILURE_CACHE_MS = 5_000;

/** The `listModels()` and `checkAvailability()` of one upstream. */
export interface OpenAICompatibleModelCatalog {
  /**
   * `upstream.models` when configured, else the ids of `GET {baseURL}/models` (reused for
   * 60 000 ms; a failed discovery for 5 000 ms), all with {@link OPENAI_COMPATIBLE_CHAT_CAPABILITIES}
   * (`['chat', 'tools', 'vision', 'json-schema', 'reasoning']`); no chat models when discovery
   * fails. Each of `upstream.imageModels` (never discovered) follows with `['image']`; a configured
   * image model id drops out of the discovered chat list, and an id in both `models` and
   * `imageModels` is listed once with `['chat', 'image', 'tools', 'vision', 'json-schema', 'reasoning']`.
   * A fresh list on every call. Never throws.
   */
  listModels(): Promise<ModelDescriptor[]>;
  /**
   * Sends `GET {baseURL}/models` with a timeout of `min(connectTimeoutMs, 5000)` ms and reuses the
   * answer for 30 000 ms. Unavailable (`reason: "GET <url> failed: <why>"`, redacted) when
   * unreachable, on a timeout, on 401/403/5xx, or on 404 when no models (chat or image) are
   * configured; a 404 with configured models counts as available (many servers do not implement
   * `/models`). Never throws.
   */
  checkAvailability(): Promise<Availability>;
}

/** What {@link createOpenAICompatibleModelCatalog} needs of its upstream. */
export interface OpenAICompatibleModelCatalogSettings {
  upstream: Pick<OpenAICompatibleUpstream, 'models' | 'imageModels' | 'connectTimeoutMs'>;
  endpoints: OpenAICompatibleEndpoints;
  /** The fetch implementation of discovery and probes. */
  fetch: typeof fetch;
  /** The provider's errors: their `redact` cleans the reasons. */
  errors: ProviderErrors;
}

/** The model list and availability check of one upstream; see {@link OpenAICompatibleModelCatalog}. */
export function createOpenAICompatibleModelCatalog(settings: OpenAICompatibleModelCatalogSettings): OpenAICompatibleModelCatalog {
  const { upstream, endpoints, fetch: fetchImplementation, errors } = settings;
  const modelsURL = endpoints.modelsURL;
  const staticModels: ModelDescriptor[] | undefined = upstream.models?.map((id) => ({ id, capabilities: [...OPENAI_COMPATIBLE_CHAT_CAPABILITIES] }));
  const imageModelIds = [...new Set(upstream.imageModels ?? [])];
  const servesImages = imageModelIds.length > 0;

  /** What `GET {baseURL}/models` is sent with: the probe timeout and the upstream's headers. */
  const modelsProbe = { headers: endpoints.headersFor('application/json'), timeoutMs: probeTimeoutFor(upstream.connectTimeoutMs) };

  /** The chat models `GET {baseURL}/models` lists (none when it fails) and how long to reuse them, ms. Never throws. */
  const discoverModels = async (): Promise<{ models: ModelDescriptor[]; lifetimeMs: number }> => {
    let models: ModelDescriptor[] = [];
    let lifetimeMs = MODEL_LIST_FAILURE_CACHE_MS;
    const probe = await sendProbe(fetchImplementation, modelsURL, modelsProbe);
    if (probe.ok) {
      const { response } = probe;
      if (response.ok) {
        try {
          const parsed = openAIModelListSchema.safeParse(await response.json());
          if (parsed.success) {
            models = parsed.data.data.map((model) => ({ id: model.id, capabilities: [...OPENAI_COMPATIBLE_CHAT_CAPABILITIES] }));
            lifetimeMs = MODEL_LIST_CACHE_MS;
          }
        } catch {
          // unreadable list: no models for now
        }
      } else {
        response.body?.cancel().catch(() => {});
      }
    }
    return { models, lifetimeMs };
  };
  const discoveredModels = reuseWhileFresh(discoverModels, (discovery) => discovery.lifetimeMs);

  /**
   * Appends the image models to a chat model list (a fresh copy): configured image ids leave a
   * discovered list, and an id configured for both gets both capabilities.
   */
  const withImageModels = (chatModels: ModelDescriptor[], discovered: boolean): ModelDescriptor[] => {
    const imageIds = new Set(imageModelIds);
    const models: ModelDescriptor[] = chatModels
      .filter((model) => !(discovered && imageIds.has(model.id)))
      .map((model) => ({ id: model.id, capabilities: imageIds.has(model.id) ? [...CHAT_AND_IMAGE_CAPABILITIES] : [...model.capabilities] }));
    const listed = new Set(models.map((model) => model.id));
    for (const id of imageModelIds) if (!listed.has(id)) models.push({ id, capabilities: ['image'] });
    return models;
  };

  const probeAvailability = async (): Promise<Availability> => {
    const reason = await probeUnavailability(fetchImplementation, modelsURL, {
      ...modelsProbe,
      isUnavailable: (status) => status === 401 || status === 403 || status >= 500 || (status === 404 && !staticModels && !servesImages),
    });
    return reason === undefined ? { available: true } : { available: false, reason: errors.redact(reason) };
  };

  return {
    listModels: async () => {
      if (staticModels) return withImageModels(staticModels, false);
      return withImageModels((await discoveredModels()).models, true);
    },
    checkAvailability: cacheAvailability(probeAvailability, (error) => errors.redact(`GET ${modelsURL} failed: ${describeError(error)}`)),
  };
}
