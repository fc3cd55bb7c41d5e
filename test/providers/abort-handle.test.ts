/** The abort that makes an AbortSignal only on demand (src/providers/abort-handle.ts). */
import { describe, expect, it } from 'vitest';
import { AbortHandle } from '../../src/providers/abort-handle.js';

describe('AbortHandle', () => {
  it('aborts once: sets aborted and reason as undici reads them, dispatches one abort event, ignores later calls', () => {
    const abort = new AbortHandle();
    const heard: unknown[] = [];
    abort.addEventListener('abort', () => heard.push(abort.reason));
    expect(abort.aborted).toBe(false);
    expect(() => abort.throwIfAborted()).not.toThrow();
    const first = new Error('first');
    abort.abort(first);
    abort.abort(new Error('second'));
    expect(abort.aborted).toBe(true);
    expect(abort.reason).toBe(first);
    expect(heard).toEqual([first]);
    expect(() => abort.throwIfAborted()).toThrow(first);
  });

  it('defaults the reason to an AbortError, as AbortController does', () => {
    const abort = new AbortHandle();
    abort.abort();
    expect(abort.reason).toBeInstanceOf(DOMException);
    expect((abort.reason as DOMException).name).toBe('AbortError');
  });

  it('a removed listener is not called', () => {
    const abort = new AbortHandle();
    let calls = 0;
    const listener = () => (calls += 1);
    abort.addEventListener('abort', listener, { once: true });
    abort.removeEventListener('abort', listener);
    abort.abort();
    expect(calls).toBe(0);
  });

  it('aborts the AbortSignal made before the abort, with the same reason; the same signal on every call', () => {
    const abort = new AbortHandle();
    const signal = abort.toAbortSignal();
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(abort.toAbortSignal()).toBe(signal);
    const combined = AbortSignal.any([signal]); // accepted where only a real AbortSignal is
    expect(signal.aborted).toBe(false);
    const reason = new Error('idle');
    abort.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(combined.reason).toBe(reason);
    expect(abort.toAbortSignal()).toBe(signal);
  });

  it('gives an already aborted AbortSignal when asked after the abort', () => {
    const abort = new AbortHandle();
    const reason = new Error('closed');
    abort.abort(reason);
    expect(abort.toAbortSignal().aborted).toBe(true);
    expect(abort.toAbortSignal().reason).toBe(reason);
  });
});
