/**
 * The generation's abort (src/generations/generation-abort.ts): its stream options, and how providers
 * receive it from the service. The abort itself: test/providers/abort-handle.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { GenerationAbort } from '../../src/generations/generation-abort.js';
import { GenerationCancellation } from '../../src/generations/generation-service.js';
import type { ChatProvider, StreamOptions } from '../../src/providers/provider.js';
import { createInMemoryService } from '../helpers/in-memory-service.js';

describe('GenerationAbort', () => {
  it('streamOptions carries the abort, the delta interval, and a signal made from it when read', () => {
    const abort = new GenerationAbort();
    const options = abort.streamOptions(25);
    expect(options.abort).toBe(abort);
    expect(options.deltaIntervalMs).toBe(25);
    expect(options.signal).toBe(abort.toAbortSignal());
    expect(abort.streamOptions().deltaIntervalMs).toBeUndefined();
  });
});

describe('a provider under the generation service', () => {
  it('gets the abort and a real signal, and both abort with the cancellation', async () => {
    let received: StreamOptions | undefined;
    let signalOnFirstRead: AbortSignal | undefined;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const provider: ChatProvider = {
      id: 'scripted',
      label: 'Scripted',
      capabilities: ['chat'],
      listModels: async () => [{ id: 'script', capabilities: ['chat'] }],
      checkAvailability: async () => ({ available: true }),
      async *streamChat(_request, options) {
        received = options;
        signalOnFirstRead = options.signal;
        yield { type: 'text-delta', text: 'a' };
        release();
        await new Promise<void>((_resolve, reject) => options.signal.addEventListener('abort', () => reject(options.signal.reason), { once: true }));
      },
    };
    const { service } = createInMemoryService(provider);
    const record = await service.startChat({ messages: [{ role: 'user', content: 'go' }] });
    await held;
    expect(received?.abort?.aborted).toBe(false);
    expect(signalOnFirstRead).toBeInstanceOf(AbortSignal);
    expect(received?.signal).toBe(signalOnFirstRead);
    const cancelled = await service.cancel(record.id, 'stop now');
    expect(cancelled.status).toBe('cancelled');
    expect(received?.abort?.aborted).toBe(true);
    expect(signalOnFirstRead?.aborted).toBe(true);
    expect(signalOnFirstRead?.reason).toBeInstanceOf(GenerationCancellation);
    expect((signalOnFirstRead?.reason as GenerationCancellation).message).toBe('stop now');
    expect(received?.abort?.reason).toBe(signalOnFirstRead?.reason);
  });
});
