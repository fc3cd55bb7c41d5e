/** The `llama-cpp` provider with the real test model: prompts, abort, and the wait for a free sequence. */
import { afterAll, describe, expect, it } from 'vitest';
import { buildPlainPrompt, createLlamaCppProvider } from '../../src/providers/llama-cpp/llama-cpp-provider.js';
import type { ChatStreamPart } from '../../src/providers/provider.js';
import { SHARED_MODELS_DIR } from '../helpers/start-app.js';

const provider = createLlamaCppProvider({ modelsDir: SHARED_MODELS_DIR, threads: 1, contextSize: 512, sequences: 1, gpu: false });

afterAll(async () => {
  await provider.close?.();
});

const request = (maxTokens: number) => ({
  model: 'stories260K',
  messages: [{ role: 'user' as const, content: 'Once upon a time' }],
  maxTokens,
  temperature: 0,
});

async function collect(parts: AsyncIterable<ChatStreamPart>): Promise<ChatStreamPart[]> {
  const all: ChatStreamPart[] = [];
  for await (const part of parts) all.push(part);
  return all;
}

describe('llama-cpp provider', () => {
  it('lists the .gguf files by name and is available', async () => {
    expect(await provider.listModels()).toEqual([{ id: 'stories260K', capabilities: ['chat', 'json-schema'] }]);
    expect(await provider.checkAvailability()).toEqual({ available: true });
  });

  it('builds a plain prompt: one message verbatim, a conversation as a transcript', () => {
    expect(buildPlainPrompt([{ role: 'user', content: 'Once upon a time' }])).toBe('Once upon a time');
    expect(
      buildPlainPrompt([
        { role: 'system', content: 'You tell stories.' },
        { role: 'user', content: 'A story about a cat.' },
      ]),
    ).toBe('You tell stories.\nUser: A story about a cat.\nAssistant:');
    expect(
      buildPlainPrompt([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Once upon' },
      ]),
    ).toBe('User: Hi\nAssistant: Once upon');
  });

  it('streams deltas then one finish with usage; the same greedy request gives the same text', async () => {
    const first = await collect(provider.streamChat(request(30), { signal: new AbortController().signal }));
    const second = await collect(provider.streamChat(request(30), { signal: new AbortController().signal }));
    expect(first).toEqual(second);
    const finish = first.at(-1)!;
    expect(finish).toMatchObject({ type: 'finish' });
    expect(first.slice(0, -1).every((part) => part.type === 'text-delta')).toBe(true);
    if (finish.type === 'finish') {
      expect(finish.usage!.completionTokens).toBeLessThanOrEqual(30);
      expect(finish.usage!.promptTokens).toBeGreaterThan(0);
    }
  });

  it('with deltaIntervalMs, hands over the first text at once and the rest at that pace, with the same text', async () => {
    const textOf = (parts: ChatStreamPart[]) => parts.map((part) => (part.type === 'text-delta' ? part.text : '')).join('');
    const deltaCount = (parts: ChatStreamPart[]) => parts.filter((part) => part.type === 'text-delta').length;
    const perToken = await collect(provider.streamChat(request(200), { signal: new AbortController().signal }));
    const paced = await collect(provider.streamChat(request(200), { signal: new AbortController().signal, deltaIntervalMs: 60_000 }));
    expect(textOf(paced)).toBe(textOf(perToken));
    expect(paced.at(-1)).toEqual(perToken.at(-1));
    // Woken once for the first text, then only by the end of the generation (the interval never passes).
    expect(deltaCount(paced)).toBeLessThanOrEqual(2);
    expect(deltaCount(perToken)).toBeGreaterThan(20);
  });

  it('stops promptly on abort and throws the abort reason', async () => {
    const controller = new AbortController();
    const reason = new Error('stop now');
    const parts: ChatStreamPart[] = [];
    await expect(
      (async () => {
        for await (const part of provider.streamChat(request(2000), { signal: controller.signal })) {
          parts.push(part);
          controller.abort(reason);
        }
      })(),
    ).rejects.toBe(reason);
    expect(parts).toHaveLength(1);
    // The sequence was released: the next generation runs.
    const after = await collect(provider.streamChat(request(5), { signal: new AbortController().signal }));
    expect(after.at(-1)).toMatchObject({ type: 'finish', finishReason: 'length' });
  });

  it('queues a second generation while the only sequence is busy, and a queued one can be aborted', async () => {
    const holder = new AbortController();
    const running = provider.streamChat(request(2000), { signal: holder.signal })[Symbol.asyncIterator]();
    await running.next(); // holds the only sequence now
    const queued = new AbortController();
    const waiting = collect(provider.streamChat(request(5), { signal: queued.signal }));
    queued.abort(new Error('gave up waiting'));
    await expect(waiting).rejects.toThrow('gave up waiting');
    await running.return?.(undefined);
    const next = await collect(provider.streamChat(request(5), { signal: new AbortController().signal }));
    expect(next.at(-1)).toMatchObject({ type: 'finish' });
  });

  it('reports an unknown model with UPSTREAM_NOT_FOUND', async () => {
    await expect(
      collect(provider.streamChat({ ...request(5), model: 'missing' }, { signal: new AbortController().signal })),
    ).rejects.toMatchObject({ code: 'UPSTREAM_NOT_FOUND', provider: 'llama-cpp' });
  });
});
