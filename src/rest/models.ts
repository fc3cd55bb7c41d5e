/**
 * `GET /v1/models` and `GET /v1/models/{id}` (`docs/protocols.md` §1): the model
 * catalog in OpenAI's list format, with the providers serving each model.
 */
import type { ServerResponse } from 'node:http';
import type { ModelCapability } from '../providers/provider.js';
import type { CatalogModel } from '../providers/provider-registry.js';
import type { RestApiDependencies } from './rest-dependencies.js';
import { RestError, sendError, sendJson } from './rest-http.js';

/**
 * One model as REST clients see it. `owned_by` and `provider` name the first provider (in
 * priority order) serving it, `providers` all of them; `type` is `chat` when any provider chats with
 * it, else `image`; `created` is 0 (unknown).
 */
export interface RestModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  provider: string;
  providers: string[];
  type: 'chat' | 'image';
  capabilities: ModelCapability[];
}

/** Groups catalog entries by model id (first appearance decides the order): one entry per id. */
export function toRestModels(models: CatalogModel[]): RestModel[] {
  const byId = new Map<string, RestModel>();
  for (const model of models) {
    const known = byId.get(model.id);
    if (known) {
      if (!known.providers.includes(model.provider)) known.providers.push(model.provider);
      for (const capability of model.capabilities) {
        if (!known.capabilities.includes(capability)) known.capabilities.push(capability);
      }
      known.type = known.capabilities.includes('chat') ? 'chat' : 'image';
      continue;
    }
    byId.set(model.id, {
      id: model.id,
      object: 'model',
      created: 0,
      owned_by: model.provider,
      provider: model.provider,
      providers: [model.provider],
      type: model.capabilities.includes('chat') ? 'chat' : 'image',
      capabilities: [...model.capabilities],
    });
  }
  return [...byId.values()];
}

/** Handles `GET /v1/models`: `200 {"object":"list","data":[RestModel…]}`. */
export async function handleListModels(dependencies: RestApiDependencies, response: ServerResponse): Promise<void> {
  sendJson(response, 200, { object: 'list', data: toRestModels(await dependencies.registry.models()) });
}

/**
 * Handles `GET /v1/models/{id}` (the id may contain `/` and `:`, exact match): `200 RestModel`,
 * or 404 `MODEL_NOT_FOUND` with an OpenAI error body.
 */
export async function handleGetModel(dependencies: RestApiDependencies, response: ServerResponse, modelId: string): Promise<void> {
  const model = toRestModels(await dependencies.registry.models()).find((candidate) => candidate.id === modelId);
  if (model) sendJson(response, 200, model);
  else sendError(response, new RestError('MODEL_NOT_FOUND', `The model "${modelId}" does not exist. GET /v1/models lists the models.`, { param: 'model' }));
}
