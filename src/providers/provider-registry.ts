/**
 * The registered providers, and how a request's `model` and `provider` pick one of them.
 */
import { GatewayError } from '../generations/gateway-error.js';
import type { Availability, ChatProvider, ModelCapability, ModelDescriptor } from './provider.js';

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
export interface ResolvedChatModel {
  provider: ChatProvider;
  /** The provider's own model id. */
  model: string;
}

/**
 * Holds the providers in registration order (which is also the order tried when a
 * request names neither provider nor model).
 */
export class ProviderRegistry {
  private readonly providers = new Map<string, ChatProvider>();

  /**
   * @param providers in priority order; ids must be unique.
   * @param options.defaultChatModel `provider:model` or a model id for requests with no model.
   */
  constructor(
    providers: ChatProvider[],
    private readonly options: { defaultChatModel?: string } = {},
  ) {
    for (const provider of providers) {
      if (this.providers.has(provider.id)) throw new Error(`provider id "${provider.id}" is registered twice`);
      this.providers.set(provider.id, provider);
    }
  }

  /** All providers, in priority order. */
  list(): ChatProvider[] {
    return [...this.providers.values()];
  }

  /** The provider with this id, or undefined. */
  get(id: string): ChatProvider | undefined {
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

  /**
   * Picks the provider and model for a chat request.
   * - `provider` names one provider; `model` is then one of its models (or empty: its first chat model).
   * - `model` may be `provider:model`, a bare model id (first provider listing it), or empty
   *   (the configured default, else the first chat model of the first available provider).
   * @throws GatewayError `PROVIDER_NOT_FOUND` for an unknown provider, `MODEL_NOT_FOUND` for a model no
   *   provider serves (or when no chat model exists at all).
   */
  async resolveChat(request: { model?: string | null; provider?: string | null }): Promise<ResolvedChatModel> {
    const providerId = request.provider?.trim() || undefined;
    const modelId = request.model?.trim() || undefined;

    if (!providerId && modelId) {
      const separator = modelId.indexOf(':');
      if (separator > 0) {
        const prefix = modelId.slice(0, separator);
        const prefixed = this.providers.get(prefix);
        if (prefixed) return this.resolveOnProvider(prefixed, modelId.slice(separator + 1) || undefined);
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
      return this.resolveOnProvider(provider, modelId);
    }
    if (!modelId && this.options.defaultChatModel) {
      return this.resolveChat({ model: this.options.defaultChatModel });
    }
    if (modelId) {
      for (const provider of this.providers.values()) {
        if (!provider.capabilities.includes('chat')) continue;
        const models = await provider.listModels();
        if (models.some((model) => model.id === modelId && model.capabilities.includes('chat'))) {
          return { provider, model: modelId };
        }
      }
      throw new GatewayError('MODEL_NOT_FOUND', `Unknown model "${modelId}". The models query lists the available ones.`);
    }
    for (const provider of this.providers.values()) {
      if (!provider.capabilities.includes('chat')) continue;
      if (!(await provider.checkAvailability()).available) continue;
      const model = (await provider.listModels()).find((candidate) => candidate.capabilities.includes('chat'));
      if (model) return { provider, model: model.id };
    }
    throw new GatewayError(
      'MODEL_NOT_FOUND',
      'No chat model is available: put a .gguf file in MODELS_DIR or configure an OpenAI-compatible upstream.',
    );
  }

  private async resolveOnProvider(provider: ChatProvider, modelId: string | undefined): Promise<ResolvedChatModel> {
    const chatModels = (await provider.listModels()).filter((model) => model.capabilities.includes('chat'));
    if (!modelId) {
      const first = chatModels[0];
      if (!first) throw new GatewayError('MODEL_NOT_FOUND', `Provider "${provider.id}" has no chat model available.`);
      return { provider, model: first.id };
    }
    // A provider whose list is unknown right now (e.g. discovery failed) gets the request anyway:
    // the upstream is the authority, and its answer becomes the generation's error.
    if (chatModels.length > 0 && !chatModels.some((model) => model.id === modelId)) {
      throw new GatewayError(
        'MODEL_NOT_FOUND',
        `Provider "${provider.id}" has no model "${modelId}". Its models: ${chatModels.map((model) => model.id).join(', ')}.`,
      );
    }
    return { provider, model: modelId };
  }
}

function toCatalogModel(provider: ChatProvider, model: ModelDescriptor): CatalogModel {
  return { id: model.id, provider: provider.id, capabilities: model.capabilities };
}
