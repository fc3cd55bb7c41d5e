/**
 * A caller's allowed models and providers over the candidates the real registry resolves: by model
 * id on any provider, by `provider:model`, by the alias the request used, by provider id in any
 * case; the forbidden candidates dropped in order, and none left refused with FORBIDDEN naming them.
 */
import { describe, expect, it } from 'vitest';
import { restrictCandidates } from '../../src/generations/candidate-restriction.js';
import { GatewayError } from '../../src/generations/gateway-error.js';
import { ProviderRegistry } from '../../src/providers/provider-registry.js';
import { scriptedProvider } from '../helpers/scripted-provider.js';

const first = { ...scriptedProvider(1), id: 'first' };
const second = { ...scriptedProvider(1), id: 'second' };
const registry = new ProviderRegistry([first, second], { aliases: { smart: ['first:script', 'second:script'] } });
const names = (candidates: Array<{ provider: { id: string }; model: string }>) => candidates.map(({ provider, model }) => `${provider.id}:${model}`);

describe('restrictCandidates', () => {
  it('keeps every candidate without a restriction, and those allowed in their order', async () => {
    const candidates = await registry.chatCandidates({ model: 'script' });
    expect(names(restrictCandidates(candidates, undefined))).toEqual(['first:script', 'second:script']);
    expect(names(restrictCandidates(candidates, { allowedModels: ['script'] }))).toEqual(['first:script', 'second:script']);
    expect(names(restrictCandidates(candidates, { allowedModels: ['SECOND:script'] }))).toEqual(['second:script']);
    expect(names(restrictCandidates(candidates, { allowedProviders: ['Second'] }))).toEqual(['second:script']);
    expect(names(restrictCandidates(candidates, { allowedModels: ['script'], allowedProviders: ['first'] }))).toEqual(['first:script']);
  });

  it('lets an allowed alias run its targets', async () => {
    const candidates = await registry.chatCandidates({ model: 'smart' });
    expect(names(restrictCandidates(candidates, { allowedModels: ['smart'] }, 'smart'))).toEqual(['first:script', 'second:script']);
  });

  it('refuses with FORBIDDEN naming the candidates and what the caller may use', async () => {
    const candidates = await registry.chatCandidates({ model: 'script' });
    let refusal: unknown;
    try {
      restrictCandidates(candidates, { allowedModels: ['other'], allowedProviders: ['third'] }, 'script');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(GatewayError);
    expect(refusal).toMatchObject({
      code: 'FORBIDDEN',
      message: 'This API key may not use first:script, second:script. It may use models other; providers third.',
    });
  });
});
