/** OpenAI's snake_case `usage` (`docs/protocols.md` §2) as the gateway's {@link Usage}. */
import type { Usage } from '../provider.js';
import type { OpenAIUsage } from './openai-compatible-api.js';

/**
 * Maps `prompt_tokens`, `completion_tokens` and `total_tokens` to `promptTokens`,
 * `completionTokens` and `totalTokens` (token counts; a missing one stays missing), or undefined
 * when the usage carries no count.
 */
export function mapOpenAIUsage(usage: OpenAIUsage): Usage | undefined {
  const mapped: Usage = {};
  if (typeof usage.prompt_tokens === 'number') mapped.promptTokens = usage.prompt_tokens;
  if (typeof usage.completion_tokens === 'number') mapped.completionTokens = usage.completion_tokens;
  if (typeof usage.total_tokens === 'number') mapped.totalTokens = usage.total_tokens;
  return Object.keys(mapped).length > 0 ? mapped : undefined;
}
