/**
 * The gpt4free-style REST API (`../shared/reference/protocols.md` §1): `/v1/chat/completions`,
 * `/v1/images/generations`, `/v1/models`, `/v1/providers`. A thin front door to the same
 * generation service as the GraphQL resolvers.
 */
import type { GenerationService } from '../generations/generation-service.js';
import type { HttpRoute } from '../http-route.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';

/** What the REST routes need. */
export interface RestApiDependencies {
  generations: GenerationService;
  registry: ProviderRegistry;
}

/** The REST API as one route: handles `/v1/…`, passes everything else on. */
export function createRestApi(_dependencies: RestApiDependencies): HttpRoute {
  return async () => false;
}
