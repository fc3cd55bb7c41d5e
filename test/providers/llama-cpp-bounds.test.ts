/**
 * Every local generation ends: with the real test models (plain and with a chat template), a
 * request without a token limit stops when the context is full, a prompt that does not fit is
 * refused with CONTEXT_LENGTH_EXCEEDED instead of being cut, and the oldest turns of a kept
 * conversation make room for the reply.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLlamaCppProvider } from '../../src/providers/llama-cpp/llama-cpp-provider.js';
import { ProviderError, type ChatMessage, type ChatRequest, type ChatStreamPart } from '../../src/providers/provider.js';
import { SHARED_MODELS_DIR } from '../helpers/start-app.js';

const CONTEXT_SIZE = 512;

const providers = {
  plain: { provider: createLlamaCppProvider({ modelsDir: SHARED_MODELS_DIR, threads: 1, contextSize: CONTEXT_SIZE, sequences: 1, gpu: false }), model: 'stories260K' },
  chat: {
    provider: createLlamaCppProvider({ modelsDir: join(SHARED_MODELS_DIR, 'chat'), threads: 1, contextSize: CONTEXT_SIZE, sequences: 1, gpu: false }),
    model: 'stories260K-chatml',
  },
};

afterAll(async () => {
  await Promise.all(Object.values(providers).map(({ provider }) => provider.close?.()));
});

async function run(kind: keyof typeof providers, request: Omit<ChatRequest, 'model'>): Promise<{ text: string; finish: Extract<ChatStreamPart, { type: 'finish' }> }> {
  const { provider, model } = providers[kind];
  let text = '';
  for await (const part of provider.streamChat({ model, ...request }, { signal: new AbortController().signal })) {
    if (part.type === 'text-delta') text += part.text;
    else if (part.type === 'finish') return { text, finish: part };
  }
  throw new Error('the stream ended without a finish part');
}

describe.each(['plain', 'chat'] as const)('llama-cpp bounds (%s model)', (kind) => {
  it('ends a generation without a token limit when the context is full, with finish reason length', async () => {
    const { text, finish } = await run(kind, { messages: [{ role: 'user', content: 'Once upon a time' }], temperature: 0 });
    expect(finish.finishReason).toBe('length');
    const { promptTokens, completionTokens } = finish.usage!;
    expect(completionTokens).toBeGreaterThan(CONTEXT_SIZE / 2);
    // Prompt and reply together fit one context: nothing was shifted out to go on.
    expect(promptTokens! + completionTokens!).toBeLessThanOrEqual(CONTEXT_SIZE);
    expect(text.length).toBeGreaterThan(0);
  });

  it('keeps a smaller maxTokens of the request', async () => {
    const { finish } = await run(kind, { messages: [{ role: 'user', content: 'Once upon a time' }], maxTokens: 12, temperature: 0 });
    expect(finish).toMatchObject({ finishReason: 'length', usage: { completionTokens: 12 } });
  });

  it('refuses a prompt longer than the context with CONTEXT_LENGTH_EXCEEDED, naming both sizes', async () => {
    const error = await run(kind, { messages: [{ role: 'user', content: 'the cat sat on the mat. '.repeat(200) }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'CONTEXT_LENGTH_EXCEEDED', provider: 'llama-cpp' });
    expect((error as Error).message).toMatch(new RegExp(`context holds ${CONTEXT_SIZE} tokens, and the messages take \\d{4}`));
  });

  it('leaves out the oldest turns of a kept conversation to make room for the reply, never the new message', async () => {
    const longReply = 'and then the little dog ran to the park with his ball. '.repeat(40);
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Tell stories.' },
      { role: 'user', content: 'Tell me a story.' },
      { role: 'assistant', content: longReply },
      { role: 'user', content: 'Another one.' },
      { role: 'assistant', content: longReply },
      { role: 'user', content: 'Once upon a time' },
    ];
    // Without the history mark the same messages do not fit.
    await expect(run(kind, { messages, maxTokens: 16 })).rejects.toMatchObject({ code: 'CONTEXT_LENGTH_EXCEEDED' });
    const { finish } = await run(kind, { messages, historyLength: 5, maxTokens: 16, temperature: 0 });
    expect(finish.usage!.completionTokens).toBe(16);
    // Whole turns went: what is left is far smaller than the two long replies, and holds the new message.
    expect(finish.usage!.promptTokens).toBeLessThan(CONTEXT_SIZE / 2);
    // New messages alone that do not fit are still refused.
    await expect(
      run(kind, { messages: [...messages.slice(0, 5), { role: 'user', content: longReply.repeat(3) }], historyLength: 5, maxTokens: 16 }),
    ).rejects.toMatchObject({ code: 'CONTEXT_LENGTH_EXCEEDED' });
  });
});
