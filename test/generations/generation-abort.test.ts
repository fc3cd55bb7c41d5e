/** The generation's abort (src/generations/generation-abort.ts) and how providers receive it from the service. */
import { describe, expect, it } from 'vitest';
import { GenerationAbort } from '../../src/generations/generation-abort.js';
import { GenerationCancellation } from '../../src/generations/generation-service.js';
import type { ChatProvider, StreamOptions } from '../../src/providers/provider.js';
import { createInMemoryService } from '../helpers/in-memory-service.js';

describe('GenerationAbort', () => {
  it('aborts once: sets aborted and reason, dispatches one abort event, ignores later calls', () => {
    const abort = new GenerationAbort();
    const seen: unknown[] = [];
    abort.addEventListener('abort', () => seen.push(abort.reason));
    expect(abort.aborted).toBe(false);
    expect(() => abort.throwIfAborted()).not.toThrow();
    const reason = new Error('first');
    abort.abort(reason);
    abort.abort(new Error('second'));
    expect(abort.aborted).toBe(true);
    expect(abort.reason).toBe(reason);
    expect(seen).toEqual([reason]);
    expect(() => abort.throwIfAborted()).toThrow(reason);
  });

  it('defaults the reason to an AbortError, as AbortController does', () => {
    const abort = new GenerationAbort();
    abort.abort();
    expect(abort.reason).toBeInstanceOf(DOMException);
    expect((abort.reason as DOMException).name).toBe('AbortError');
  });

  it('a removed listener is not called', () => {
    const abort = new GenerationAbort();
    let calls = 0;
    const listener = () => (calls += 1);
    abort.addEventListener('abort', listener, { once: true });
    abort.removeEventListener('abort', listener);
    abort.abort();
    expect(calls).toBe(0);
  });

  it('toAbortSignal gives one real AbortSignal that follows the abort, whether made before or after it', () => {
    const before = new GenerationAbort();
    const signal = before.toAbortSignal();
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(before.toAbortSignal()).toBe(signal);
    const combined = AbortSignal.any([signal]); // accepted where only a real AbortSignal is
    expect(signal.aborted).toBe(false);
    const reason = new Error('stop');
    before.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(combined.reason).toBe(reason);

    const after = new GenerationAbort();
    after.abort(reason);
    expect(after.toAbortSignal().aborted).toBe(true);
    expect(after.toAbortSignal().reason).toBe(reason);
  });

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
