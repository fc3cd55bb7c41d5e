/**
 * A caller's allowed models and providers applied to a request's candidates (a virtual key's
 * `allowedModels` / `allowedProviders`): the forbidden ones are dropped before anything runs, so
 * fallback never tries one, and a request left with none is refused with `FORBIDDEN` naming what
 * the caller may use.
 */
import type { ResolvedModel } from '../providers/provider-registry.js';
import type { Provider } from '../providers/provider.js';
import { GatewayError } from './gateway-error.js';
import type { CandidateRestriction } from './generation-inputs.js';

/** Most candidates a refusal names; more are counted. */
const NAMED_CANDIDATES = 5;

/**
 * Whether `restriction` allows running `model` on `provider`. A provider is allowed when
 * `allowedProviders` is absent or lists its id (any case). A model is allowed when
 * `allowedModels` is absent or lists its id, `provider:model` (the provider part in any case), or
 * `requestedModel` — the name the request used, such as an alias, which allows all its targets.
 */
export function isCandidateAllowed(restriction: CandidateRestriction, provider: Provider, model: string, requestedModel?: string): boolean {
  const providerId = provider.id.toLowerCase();
  if (restriction.allowedProviders && !restriction.allowedProviders.some((allowed) => allowed.toLowerCase() === providerId)) return false;
  const allowedModels = restriction.allowedModels;
  if (!allowedModels) return true;
  return allowedModels.some((allowed) => {
    if (allowed === model || (requestedModel !== undefined && allowed === requestedModel)) return true;
    const separator = allowed.indexOf(':');
    return separator > 0 && allowed.slice(0, separator).toLowerCase() === providerId && allowed.slice(separator + 1) === model;
  });
}

/**
 * The candidates `restriction` allows, in their order.
 * @param requestedModel the request's `model` as written (trimmed), if any.
 * @throws GatewayError `FORBIDDEN` when it allows none: the message names the refused candidates
 *   (`provider:model`) and what the caller may use.
 */
export function restrictCandidates<P extends Provider>(
  candidates: Array<ResolvedModel<P>>,
  restriction: CandidateRestriction | undefined,
  requestedModel?: string,
): Array<ResolvedModel<P>> {
  if (!restriction || (!restriction.allowedModels && !restriction.allowedProviders)) return candidates;
  const allowed = candidates.filter((candidate) => isCandidateAllowed(restriction, candidate.provider, candidate.model, requestedModel));
  if (allowed.length > 0) return allowed;
  const names = candidates.slice(0, NAMED_CANDIDATES).map((candidate) => `${candidate.provider.id}:${candidate.model}`);
  const more = candidates.length > NAMED_CANDIDATES ? ` and ${candidates.length - NAMED_CANDIDATES} more` : '';
  const may = [
    restriction.allowedModels && `models ${restriction.allowedModels.join(', ')}`,
    restriction.allowedProviders && `providers ${restriction.allowedProviders.join(', ')}`,
  ].filter(Boolean);
  throw new GatewayError('FORBIDDEN', `This API key may not use ${names.join(', ')}${more}. It may use ${may.join('; ')}.`);
}
