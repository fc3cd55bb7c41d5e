/**
 * The registered providers, and how a request's `model` and `provider` pick one of them.
 */
import { GatewayError } from '../generations/gateway-error.js';
import type { Availability, ChatProvider, ImageProvider, ModelCapability, ModelDescriptor, Provider } from './provider.js';

/** A model together with the provider that serves it. */
export interface CatalogModel {
  id: string;
  provider: string;
  capabilities: ModelCapability[];
}

/** A provider's catalog entry: its availability and its models. */
export interface CatalogProvider {
  id: string;
  label: string;
  capabilities: readonly ModelCapability[];
  availability: Availability;
  models: CatalogModel[];
}

/** The outcome of model resolution: which provider runs which of its models. */
export interface ResolvedModel<P extends Provider = Provider> {
  provider: P;
  /** The provider's own model id. */
  model: string;
}

/** What each capability needs the provider to implement, and how errors name it. */
const CAPABILITY_NOUNS: Record<ModelCapability, string> = { chat: 'chat', image: 'image' };

function serves(provider: Provider, capability: ModelCapability): boolean {
  return (
    provider.capabilities.includes(capability) &&
    (capability === 'chat' ? provider.streamChat !== undefined : provider.generateImages !== undefined)
  );
}

/**
 * Holds the providers in registration order (which is also the order tried when a
 * request names neither provider nor model).
 */
export class ProviderRegistry {
  private readonly providers = new Map<string, Provider>();

  /**
   * @param providers in priority order; ids must be unique.
   * @param options.defaultChatModel / defaultImageModel `provider:model` or a model id for requests with no model.
   */
  constructor(
    providers: Provider[],
    private readonly options: { defaultChatModel?: string; defaultImageModel?: string } = {},
  ) {
    for (const provider of providers) {
      if (this.providers.has(provider.id)) throw new Error(`provider id "${provider.id}" is registered twice`);
      this.providers.set(provider.id, provider);
    }
  }

  /** All providers, in priority order. */
  list(): Provider[] {
    return [...this.providers.values()];
  }

  /** The provider with this id, or undefined. */
  get(id: string): Provider | undefined {
    return this.providers.get(id);
  }

  /** Every provider with its availability and models (queried concurrently). */
  async catalog(): Promise<CatalogProvider[]> {
    return Promise.all(
      this.list().map(async (provider) => {
        const [availability, models] = await Promise.all([provider.checkAvailability(), provider.listModels()]);
        return {
          id: provider.id,
          label: provider.label,
          capabilities: provider.capabilities,
          availability,
          models: models.map((model) => toCatalogModel(provider, model)),
        };
      }),
    );
  }

  /** Every model of every provider, in priority order. */
  async models(): Promise<CatalogModel[]> {
    const lists = await Promise.all(
      this.list().map(async (provider) => (await provider.listModels()).map((model) => toCatalogModel(provider, model))),
    );
    return lists.flat();
  }

  /** Picks the provider and model of a chat request; see {@link resolve}. */
  async resolveChat(request: { model?: string | null; provider?: string | null }): Promise<ResolvedModel<ChatProvider>> {
    return (await this.resolve('chat', request)) as ResolvedModel<ChatProvider>;
  }

  /** Picks the provider and model of an image request; see {@link resolve}. */
  async resolveImage(request: { model?: string | null; provider?: string | null }): Promise<ResolvedModel<ImageProvider>> {
    return (await this.resolve('image', request)) as ResolvedModel<ImageProvider>;
  }

  /**
   * Picks the provider and model for a request of the given capability.
   * - `provider` names one provider; `model` is then one of its models (or empty: its first model of that capability).
   * - `model` may be `provider:model`, a bare model id (first provider listing it with the capability),
   *   or empty (the configured default, else the first model of the first available provider).
   * @throws GatewayError `PROVIDER_NOT_FOUND` for an unknown provider (or one without the capability),
   *   `MODEL_NOT_FOUND` for a model no provider serves (or when no model of the capability exists at all).
   */
  async resolve(
    capability: ModelCapability,
    request: { model?: string | null; provider?: string | null },
  ): Promise<ResolvedModel> {
    const noun = CAPABILITY_NOUNS[capability];
    const providerId = request.provider?.trim() || undefined;
    const modelId = request.model?.trim() || undefined;

    if (!providerId && modelId) {
      const separator = modelId.indexOf(':');
      if (separator > 0) {
        const prefixed = this.providers.get(modelId.slice(0, separator));
        if (prefixed) return this.resolveOnProvider(capability, prefixed, modelId.slice(separator + 1) || undefined);
      }
    }
    if (providerId) {
      const provider = this.providers.get(providerId);
      if (!provider) {
        throw new GatewayError(
          'PROVIDER_NOT_FOUND',
          `Unknown provider "${providerId}". Known providers: ${[...this.providers.keys()].join(', ') || 'none'}.`,
        );
      }
      if (!serves(provider, capability)) {
        throw new GatewayError('PROVIDER_NOT_FOUND', `Provider "${providerId}" does not serve ${noun} models.`);
      }
      return this.resolveOnProvider(capability, provider, modelId);
    }
    const configuredDefault = capability === 'chat' ? this.options.defaultChatModel : this.options.defaultImageModel;
    if (!modelId && configuredDefault) return this.resolve(capability, { model: configuredDefault });
    if (modelId) {
      for (const provider of this.providers.values()) {
        if (!serves(provider, capability)) continue;
        const models = await provider.listModels();
        if (models.some((model) => model.id === modelId && model.capabilities.includes(capability))) {
          return { provider, model: modelId };
        }
      }
      throw new GatewayError('MODEL_NOT_FOUND', `Unknown ${noun} model "${modelId}". The models query lists the available ones.`);
    }
    for (const provider of this.providers.values()) {
      if (!serves(provider, capability)) continue;
      if (!(await provider.checkAvailability()).available) continue;
      const model = (await provider.listModels()).find((candidate) => candidate.capabilities.includes(capability));
      if (model) return { provider, model: model.id };
    }
    throw new GatewayError(
      'MODEL_NOT_FOUND',
      capability === 'chat'
        ? 'No chat model is available: put a .gguf file in MODELS_DIR or configure an OpenAI-compatible upstream.'
        : 'No image model is available: every image provider is unavailable or none is configured.',
    );
  }

  private async resolveOnProvider(capability: ModelCapability, provider: Provider, modelId: string | undefined): Promise<ResolvedModel> {
    const noun = CAPABILITY_NOUNS[capability];
    if (!serves(provider, capability)) {
      throw new GatewayError('PROVIDER_NOT_FOUND', `Provider "${provider.id}" does not serve ${noun} models.`);
    }
    const models = (await provider.listModels()).filter((model) => model.capabilities.includes(capability));
    if (!modelId) {
      const first = models[0];
      if (!first) throw new GatewayError('MODEL_NOT_FOUND', `Provider "${provider.id}" has no ${noun} model available.`);
      return { provider, model: first.id };
    }
    // A provider whose list is unknown right now (e.g. discovery failed) gets the request anyway:
    // the upstream is the authority, and its answer becomes the generation's error.
    if (models.length > 0 && !models.some((model) => model.id === modelId)) {
      throw new GatewayError(
        'MODEL_NOT_FOUND',
        `Provider "${provider.id}" has no ${noun} model "${modelId}". Its ${noun} models: ${models.map((model) => model.id).join(', ')}.`,
      );
    }
    return { provider, model: modelId };
  }
}

function toCatalogModel(provider: Provider, model: ModelDescriptor): CatalogModel {
  return { id: model.id, provider: provider.id, capabilities: model.capabilities };
}
