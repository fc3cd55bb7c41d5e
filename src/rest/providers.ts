/**
 * `GET /v1/providers` and `GET /v1/providers/{id}` (`docs/protocols.md` §1): the
 * provider catalog. Entries follow gpt4free's provider list (`id`, `object: "provider"`,
 * `created`, `label`, and in the detail `models` and `image_models`) plus availability.
 */
import type { ServerResponse } from 'node:http';
import type { ModelCapability, Provider } from '../providers/provider.js';
import { ModelResolutionError, type CatalogProvider } from '../providers/provider-registry.js';
import type { RestApiDependencies } from './rest-dependencies.js';
import { RestError, sendError, sendJson } from './rest-http.js';

/**
 * One provider as REST clients see it: `available` and (when not) `unavailable_reason` (else null);
 * `models` lists every model id it serves now, `image_models` those that make images; `created` is 0 (unknown).
 */
export interface RestProvider {
  id: string;
  object: 'provider';
  created: number;
  label: string;
  available: boolean;
  unavailable_reason: string | null;
  models: string[];
  image_models: string[];
  capabilities: ModelCapability[];
}

/** A catalog entry as a {@link RestProvider}. */
export function toRestProvider(provider: CatalogProvider): RestProvider {
  return {
    id: provider.id,
    object: 'provider',
    created: 0,
    label: provider.label,
    available: provider.availability.available,
    unavailable_reason: provider.availability.available ? null : (provider.availability.reason ?? null),
    models: provider.models.map((model) => model.id),
    image_models: provider.models.filter((model) => model.capabilities.includes('image')).map((model) => model.id),
    capabilities: [...provider.capabilities],
  };
}

/** Handles `GET /v1/providers`: `200 [RestProvider…]` (a plain JSON array, as gpt4free answers), in priority order. */
export async function handleListProviders(dependencies: RestApiDependencies, response: ServerResponse): Promise<void> {
  sendJson(response, 200, (await dependencies.registry.catalog()).map(toRestProvider));
}

/**
 * Handles `GET /v1/providers/{id}`, the id in any case or another name of the provider (gpt4free's
 * `PollinationsAI`): `200 RestProvider` (availability as the catalog sees it, the circuit breaker
 * included), or 404 `PROVIDER_NOT_FOUND` with an OpenAI error body naming the known ids and names.
 */
export async function handleGetProvider(dependencies: RestApiDependencies, response: ServerResponse, providerName: string): Promise<void> {
  const { registry } = dependencies;
  let registered: Provider;
  try {
    registered = registry.resolve(providerName).provider;
  } catch (error) {
    if (!(error instanceof ModelResolutionError)) throw error;
    sendError(response, new RestError(error.code, error.message, { param: 'provider' }));
    return;
  }
  const provider = (await registry.catalog()).find((candidate) => candidate.id === registered.id)!;
  sendJson(response, 200, toRestProvider(provider));
}
