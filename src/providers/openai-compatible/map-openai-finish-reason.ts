/** OpenAI's `finish_reason` (`docs/protocols.md` §2) as the gateway's {@link FinishReason}. */
import type { FinishReason } from '../provider.js';

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content-filter',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
};

/**
 * Maps OpenAI's `finish_reason` to ours: `stop`, `length`, `content_filter` → `content-filter`,
 * `tool_calls` and the older `function_call` → `tool-calls`; an unknown value counts as `stop`.
 */
export function mapOpenAIFinishReason(value: string): FinishReason {
  return FINISH_REASONS[value] ?? 'stop';
}
