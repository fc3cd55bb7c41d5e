/** An in-process chat provider for generation-service tests: a scripted number of one-character deltas. */
import type { ChatProvider, ChatStreamPart, StreamOptions } from '../../src/providers/provider.js';

/**
 * A provider (`scripted`, model `script`) that yields `count` one-character deltas (`0`…`9` over and
 * over), awaiting `gate(index)` before each when given, then a finish with `completionTokens: count`.
 * It stops with the abort reason once its signal is aborted.
 */
export function scriptedProvider(count: number, gate?: (index: number) => Promise<void>): ChatProvider {
  return {
    id: 'scripted',
    label: 'Scripted',
    capabilities: ['chat'],
    listModels: async () => [{ id: 'script', capabilities: ['chat'] }],
    checkAvailability: async () => ({ available: true }),
    async *streamChat(_request, { signal }: StreamOptions): AsyncGenerator<ChatStreamPart> {
      for (let index = 0; index < count; index += 1) {
        if (gate) await gate(index);
        signal.throwIfAborted();
        yield { type: 'text-delta', text: String(index % 10) };
      }
      yield { type: 'finish', finishReason: 'stop', usage: { completionTokens: count } };
    },
  };
}
