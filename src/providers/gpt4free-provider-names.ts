/**
 * gpt4free's provider names, so scripts written for it run unchanged (`docs/protocols.md` §6):
 * each as gpt4free spells it in `g4f/Provider/__init__.py` and `g4f/Provider/hf_space/__init__.py`,
 * with the provider (and, for a provider of one Space, the model) it stands for here.
 */
import type { ProviderNameTarget } from './provider-names.js';

/**
 * gpt4free's provider name → this gateway's provider and pinned model; matched in any case.
 *
 * - `Pollinations` (the class's name now), `PollinationsAI` (its older name, which gpt4free still
 *   accepts) and `PollinationsImage` (its image-only variant) → `pollinations`.
 * - `HuggingSpace` (gpt4free's provider over all its Spaces) → `hf-space`, any of its models.
 * - One provider class per Space → `hf-space` pinned to that Space's preset:
 *   `BlackForestLabs_Flux1Schnell` (since removed from gpt4free; scripts written before name it)
 *   → `flux-1-schnell`, `BlackForestLabs_Flux1Dev` → `flux-1-dev`, `StabilityAI_SD35Large` →
 *   `sd-3.5-large`.
 *
 * `Copilot` is not here: gpt4free's name is the provider id `copilot` in another case, and ids
 * already match in any case.
 */
export const GPT4FREE_PROVIDER_NAMES: Readonly<Record<string, ProviderNameTarget>> = {
  Pollinations: { provider: 'pollinations' },
  PollinationsAI: { provider: 'pollinations' },
  PollinationsImage: { provider: 'pollinations' },
  HuggingSpace: { provider: 'hf-space' },
  BlackForestLabs_Flux1Schnell: { provider: 'hf-space', model: 'flux-1-schnell' },
  BlackForestLabs_Flux1Dev: { provider: 'hf-space', model: 'flux-1-dev' },
  StabilityAI_SD35Large: { provider: 'hf-space', model: 'sd-3.5-large' },
};
