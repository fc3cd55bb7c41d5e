/**
 * The registered providers, and how a request's `model` and `provider` become an ordered list of
 * candidates to try (gpt4free's resolution rules, `docs/protocols.md` §6).
 */
import type { ProviderCircuitBreaker } from './circuit-breaker.js';
import { ProviderNames, type ProviderNameTarget } from './provider-names.js';
import type { Availability, ChatProvider, ImageProvider, ModelCapability, ModelDescriptor, Provider } from './provider.js';

/**
 * A request names a model or provider that no registered provider serves: `code` is
 * `MODEL_NOT_FOUND` or `PROVIDER_NOT_FOUND`, the message says which and what there is instead —
 * or, for a request with no model, `PROVIDER_UNAVAILABLE` when the providers that have models
 * cannot serve right now (a default model still downloading), the message saying why.
 */
export class ModelResolutionError extends Error {
  override readonly name = 'ModelResolutionError';
  constructor(
    readonly code: 'MODEL_NOT_FOUND' | 'PROVIDER_NOT_FOUND' | 'PROVIDER_UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

/** A model together with the provider that serves it. */
export interface CatalogModel {
  id: string;
  provider: string;
  capabilities: ModelCapability[];
}

/** A provider's catalog entry: its availability (circuit breaker included) and its models. */
export interface CatalogProvider {
  id: string;
  label: string;
  capabilities: readonly ModelCapability[];
  availability: Availability;
  models: CatalogModel[];
}

/** One candidate of a request: which provider runs which of its models. */
export interface ResolvedModel<P extends Provider = Provider> {
  provider: P;
  /** The provider's own model id. */
  model: string;
}

/** What a request says about model and provider; every field may be empty. */
export interface ModelRequest {
  model?: string | null;
  /** One provider id or other name of a provider, or several separated by spaces or commas (tried in that order). */
  provider?: string | null;
  /** Provider ids or other names, tried in that order (GraphQL's list form). */
  providers?: readonly string[] | null;
}

/** The provider a name in a request stands for: its id in any case, or another name of it (`ProviderRegistryOptions.providerNames`). */
export interface NamedProvider {
  /** The name as the request wrote it. */
  name: string;
  provider: Provider;
  /** The one model the name pins (`BlackForestLabs_Flux1Schnell` → `flux-1-schnell`); absent for an id or a name of the whole provider. */
  model?: string;
}

/** Settings of the registry. */
export interface ProviderRegistryOptions {
  /** `provider:model`, a model id or an alias for chat requests with no model. */
  defaultChatModel?: string;
  defaultImageModel?: string;
  /** Alias → targets (`provider:model` or model ids), e.g. `flux` → `['hf-space:flux-1-schnell', 'pollinations:flux']`. */
  aliases?: Readonly<Record<string, readonly string[]>>;
  /**
   * Built-in aliases, in the same form. Explicit configuration beats them: one is not used while a
   * provider that none of its targets names serves a model of exactly the alias's name (an upstream
   * configured with an image model `flux`, say), so a request for that name goes where the catalog
   * says the model is.
   */
  defaultAliases?: Readonly<Record<string, readonly string[]>>;
  /**
   * Other names of providers, matched in any case (gpt4free's, `docs/protocols.md` §6): name → the
   * provider id and, optionally, the one model the name pins. A registered provider id beats a name.
   */
  providerNames?: Readonly<Record<string, ProviderNameTarget>>;
  /** Provider ids tried first, in this order; the others follow in registration order. */
  order?: readonly string[];
  /** Failure counting per provider (in memory, or shared through Redis); its open circuits show as unavailable in the catalog. */
  breaker?: ProviderCircuitBreaker;
}

function serves(provider: Provider, capability: ModelCapability): boolean {
  return (
    provider.capabilities.includes(capability) &&
    (capability === 'chat' ? provider.streamChat !== undefined : provider.generateImages !== undefined)
  );
}

/**
 * Splits `"a b,c"` and `['d']` into `['a', 'b', 'c', 'd']`, without repeats in any case. Provider
 * names are matched without regard to case (gpt4free's clients write them in CamelCase, `"Copilot"`;
 * ids here are lower case); each is kept as written, for messages.
 */
function providerNamesOf(request: ModelRequest): string[] {
  const names = [...(request.provider?.split(/[\s,]+/) ?? []), ...(request.providers ?? [])].map((name) => name.trim()).filter(Boolean);
  const seen = new Set<string>();
  return names.filter((name) => !seen.has(name.toLowerCase()) && seen.add(name.toLowerCase()));
}

/** Holds the providers in priority order and resolves requests to candidates. */
export class ProviderRegistry {
  private readonly providers = new Map<string, Provider>();
  private readonly names: ProviderNames;
  readonly breaker: ProviderCircuitBreaker | undefined;

  /**
   * @param providers ids must be unique; ordered by `options.order`, then as given.
   */
  constructor(
    providers: Provider[],
    private readonly options: ProviderRegistryOptions = {},
  ) {
    const order = (options.order ?? []).map((id) => id.toLowerCase());
    const rank = (provider: Provider) => {
      const index = order.indexOf(provider.id.toLowerCase());
      return index < 0 ? order.length : index;
    };
    const sorted = providers.map((provider, index) => ({ provider, index })).sort((a, b) => rank(a.provider) - rank(b.provider) || a.index - b.index);
    for (const { provider } of sorted) {
      const key = provider.id.toLowerCase();
      if (this.providers.has(key)) throw new Error(`provider id "${provider.id}" is registered twice`);
      this.providers.set(key, provider);
    }
    this.names = new ProviderNames(options.providerNames);
    this.breaker = options.breaker;
  }

  /** All providers, in priority order. */
  list(): Provider[] {
    return [...this.providers.values()];
  }

  /** The provider with this id (any case: `Copilot`, `LLAMA-CPP`), or undefined. */
  get(id: string): Provider | undefined {
    return this.providers.get(id.toLowerCase());
  }

  /**
   * The provider `name` stands for: a provider id in any case, else another name of one
   * (`providerNames`) whose provider is registered, with the model it pins. Undefined otherwise.
   */
  find(name: string): NamedProvider | undefined {
    const byId = this.get(name);
    if (byId) return { name, provider: byId };
    const known = this.names.find(name);
    const provider = known && this.get(known.provider);
    return provider && { name, provider, ...(known.model !== undefined && { model: known.model }) };
  }

  /**
   * The provider `name` stands for, as {@link find}.
   * @throws ModelResolutionError `PROVIDER_NOT_FOUND` naming the provider ids of this registry and
   *   the other names it accepts, or, for a name of a provider that is not registered here, that provider.
   */
  resolve(name: string): NamedProvider {
    const found = this.find(name);
    if (found) return found;
    const ids = this.list().map((provider) => provider.id);
    const known = `Known providers: ${ids.join(', ') || 'none'}`;
    const otherNames = this.names.namesFor((id) => this.get(id) !== undefined);
    const accepted = otherNames.length > 0 ? `; other names accepted: ${otherNames.join(', ')}` : '';
    const target = this.names.find(name);
    const message = target
      ? `Provider "${name}" stands for "${target.provider}", which is not configured on this server. ${known}${accepted}.`
      : `Unknown provider "${name}". ${known}${accepted}.`;
    throw new ModelResolutionError('PROVIDER_NOT_FOUND', message);
  }

  /** The provider's availability: its own check, and then its circuit. Never throws. */
  async availability(provider: Provider): Promise<Availability> {
    const own = await provider.checkAvailability();
    if (!own.available) return own;
    const reason = await this.breaker?.unavailableReason(provider.id);
    return reason ? { available: false, reason } : own;
  }

  /** Every provider with its availability and models (queried concurrently). */
  async catalog(): Promise<CatalogProvider[]> {
    return Promise.all(
      this.list().map(async (provider) => {
        const [availability, models] = await Promise.all([this.availability(provider), provider.listModels()]);
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

  /** The candidates of a chat request; see {@link candidates}. */
  async chatCandidates(request: ModelRequest): Promise<Array<ResolvedModel<ChatProvider>>> {
    return (await this.candidates('chat', request)) as Array<ResolvedModel<ChatProvider>>;
  }

  /** The candidates of an image request; see {@link candidates}. */
  async imageCandidates(request: ModelRequest): Promise<Array<ResolvedModel<ImageProvider>>> {
    return (await this.candidates('image', request)) as Array<ResolvedModel<ImageProvider>>;
  }

  /**
   * The providers (with their model ids) to try for a request, in order; never empty.
   * - `provider` names one or several providers (space- or comma-separated, or `providers`), by id
   *   or other name ({@link find}): each of them that serves the model, in that order; a name that
   *   pins a model runs that model.
   * - `model` may be `provider:model`, an alias, a model id (every provider listing it), a provider
   *   id or other name (its first model of the capability, or the model the name pins), or empty
   *   (the configured default, else the first model of each available provider).
   * @throws ModelResolutionError `PROVIDER_NOT_FOUND` (an unknown provider, listing the known ids
   *   and names, or one without the capability), `MODEL_NOT_FOUND` (no named provider serves the
   *   model, a pinned model is not served, or no provider at all), `PROVIDER_UNAVAILABLE` (no model
   *   given, and every provider with a model of the capability is unavailable).
   */
  async candidates(capability: ModelCapability, request: ModelRequest): Promise<ResolvedModel[]> {
    const model = request.model?.trim() || undefined;
    const providerNames = providerNamesOf(request);
    if (providerNames.length > 0) {
      const named = providerNames.map((name) => {
        const found = this.resolve(name);
        if (!serves(found.provider, capability)) throw new ModelResolutionError('PROVIDER_NOT_FOUND', `Provider "${name}" does not serve ${capability} models.`);
        return found;
      });
      const found: ResolvedModel[] = [];
      for (const entry of named) {
        const resolved = await this.namedModelOn(capability, entry, model, named.length === 1);
        if (resolved) found.push(resolved);
      }
      if (found.length === 0) {
        throw new ModelResolutionError('MODEL_NOT_FOUND', `No ${capability} model "${model}" on ${providerNames.map((name) => `"${name}"`).join(', ')}.`);
      }
      return dedupe(found);
    }

    if (!model) {
      const configured = capability === 'chat' ? this.options.defaultChatModel : this.options.defaultImageModel;
      if (configured) return this.candidates(capability, { model: configured });
      const found: ResolvedModel[] = [];
      /** Why the providers that have a model of the capability but cannot serve now cannot. */
      const unavailable: string[] = [];
      for (const provider of this.providers.values()) {
        if (!serves(provider, capability)) continue;
        const availability = await this.availability(provider);
        const first = (await provider.listModels()).find((candidate) => candidate.capabilities.includes(capability));
        if (!first) continue;
        if (availability.available) found.push({ provider, model: first.id });
        else unavailable.push(`${provider.id}: ${availability.reason ?? 'unavailable'}`);
      }
      if (found.length === 0 && unavailable.length > 0) {
        throw new ModelResolutionError('PROVIDER_UNAVAILABLE', `No ${capability} model is available right now (${unavailable.join('; ')}).`);
      }
      if (found.length === 0) {
        throw new ModelResolutionError(
          'MODEL_NOT_FOUND',
          capability === 'chat'
            ? 'No chat model is available: put a .gguf file in MODELS_DIR or configure an OpenAI-compatible upstream.'
            : 'No image model is available: every image provider is unavailable or none is configured.',
        );
      }
      return found;
    }

    const separator = model.indexOf(':');
    const prefixed = separator > 0 ? this.find(model.slice(0, separator)) : undefined;
    if (prefixed) {
      if (!serves(prefixed.provider, capability)) {
        throw new ModelResolutionError('PROVIDER_NOT_FOUND', `Provider "${prefixed.name}" does not serve ${capability} models.`);
      }
      return [(await this.namedModelOn(capability, prefixed, model.slice(separator + 1) || undefined, true))!];
    }

    const aliasTargets = this.options.aliases?.[model] ?? (await this.defaultAliasTargets(capability, model));
    if (aliasTargets) {
      const found: ResolvedModel[] = [];
      for (const target of aliasTargets) {
        try {
          found.push(...(await this.candidates(capability, { model: target })));
        } catch (error) {
          if (!(error instanceof ModelResolutionError)) throw error; // a target that is not configured here is skipped
        }
      }
      if (found.length > 0) return dedupe(found);
      throw new ModelResolutionError('MODEL_NOT_FOUND', `No provider serves "${model}" (an alias of ${aliasTargets.join(', ')}).`);
    }

    const found: ResolvedModel[] = [];
    for (const provider of this.providers.values()) {
      if (!serves(provider, capability)) continue;
      const models = await provider.listModels();
      if (models.some((candidate) => candidate.id === model && candidate.capabilities.includes(capability))) found.push({ provider, model });
    }
    if (found.length > 0) return found;

    const asProvider = this.find(model);
    if (asProvider && serves(asProvider.provider, capability)) return [(await this.namedModelOn(capability, asProvider, undefined, true))!];
    throw new ModelResolutionError('MODEL_NOT_FOUND', `Unknown ${capability} model "${model}". GET /v1/models (REST) and the models query (GraphQL) list the available ones.`);
  }

  /**
   * The targets of the built-in alias `model`, unless a provider that none of them names serves a
   * model of that name with the capability (then undefined: configuration beats built-ins).
   */
  private async defaultAliasTargets(capability: ModelCapability, model: string): Promise<readonly string[] | undefined> {
    const targets = this.options.defaultAliases?.[model];
    if (!targets) return undefined;
    const named = new Set(targets.map((target) => (target.includes(':') ? target.slice(0, target.indexOf(':')).toLowerCase() : undefined)));
    for (const provider of this.providers.values()) {
      if (named.has(provider.id.toLowerCase()) || !serves(provider, capability)) continue;
      const models = await provider.listModels();
      if (models.some((candidate) => candidate.id === model && candidate.capabilities.includes(capability))) return undefined;
    }
    return targets;
  }

  /**
   * The model to ask a named provider for: as {@link modelOn}, unless the name pins a model. Then
   * that model, whatever else the request's `model` says (an alias such as `flux`, gpt4free's own
   * model names: gpt4free's one-Space providers ignore it too) unless it is the id of another model
   * of the provider, which is refused.
   * @param required throw MODEL_NOT_FOUND instead of answering undefined.
   */
  private async namedModelOn(capability: ModelCapability, named: NamedProvider, model: string | undefined, required: boolean): Promise<ResolvedModel | undefined> {
    const { provider, model: pinned } = named;
    if (pinned === undefined) return this.modelOn(capability, provider, model, required);
    const ids = (await provider.listModels()).filter((candidate) => candidate.capabilities.includes(capability)).map((candidate) => candidate.id);
    if (!ids.includes(pinned)) {
      if (!required) return undefined;
      const served = ids.join(', ') || 'none';
      throw new ModelResolutionError('MODEL_NOT_FOUND', `Provider "${named.name}" is ${provider.id}:${pinned}, which this server does not serve. Its ${capability} models: ${served}.`);
    }
    if (model !== undefined && model !== pinned && ids.includes(model)) {
      throw new ModelResolutionError('MODEL_NOT_FOUND', `Provider "${named.name}" is ${provider.id}:${pinned} only; ask provider "${provider.id}" for "${model}".`);
    }
    return { provider, model: pinned };
  }

  /**
   * The model to ask `provider` for: its first model of the capability when `model` is empty, the
   * alias target on this provider when `model` is an alias, else `model` itself when the provider
   * lists it — or, when its list is unknown right now (discovery failed), `model` anyway (the
   * upstream is the authority, and its answer becomes the generation's error).
   * @param required throw MODEL_NOT_FOUND instead of answering undefined.
   */
  private async modelOn(
    capability: ModelCapability,
    provider: Provider,
    model: string | undefined,
    required: boolean,
  ): Promise<ResolvedModel | undefined> {
    const models = (await provider.listModels()).filter((candidate) => candidate.capabilities.includes(capability));
    if (!model) {
      const first = models[0];
      if (first) return { provider, model: first.id };
      if (required) throw new ModelResolutionError('MODEL_NOT_FOUND', `Provider "${provider.id}" has no ${capability} model available.`);
      return undefined;
    }
    const aliasTarget = (this.options.aliases?.[model] ?? this.options.defaultAliases?.[model])
      ?.map((target) => target.split(':'))
      .find(([prefix, id]) => prefix?.toLowerCase() === provider.id.toLowerCase() && id && models.some((candidate) => candidate.id === id));
    if (aliasTarget) return { provider, model: aliasTarget[1]! };
    if (models.length === 0 || models.some((candidate) => candidate.id === model)) return { provider, model };
    if (required) {
      throw new ModelResolutionError(
        'MODEL_NOT_FOUND',
        `Provider "${provider.id}" has no ${capability} model "${model}". Its ${capability} models: ${models.map((candidate) => candidate.id).join(', ')}.`,
      );
    }
    return undefined;
  }
}

function dedupe(candidates: ResolvedModel[]): ResolvedModel[] {
  const seen = new Set<string>();
  return candidates.filter((candidate) => {
    const key = `${candidate.provider.id}\u0000${candidate.model}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function toCatalogModel(provider: Provider, model: ModelDescriptor): CatalogModel {
  return { id: model.id, provider: provider.id, capabilities: model.capabilities };
}
