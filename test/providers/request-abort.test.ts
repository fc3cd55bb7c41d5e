import { describe, expect, it } from 'vitest';
import { RequestAbort } from '../../src/providers/openai-compatible/request-abort.js';

describe('RequestAbort', () => {
  it('emits abort once, with the first reason, and records it as undici reads it', () => {
    const requestAbort = new RequestAbort();
    const heard: unknown[] = [];
    requestAbort.on('abort', () => heard.push(requestAbort.reason));
    expect(requestAbort.aborted).toBe(false);
    const first = new Error('first');
    requestAbort.abort(first);
    requestAbort.abort(new Error('second'));
    expect(requestAbort.aborted).toBe(true);
    expect(requestAbort.reason).toBe(first);
    expect(heard).toEqual([first]);
  });

  it('aborts the AbortSignal made before the abort, with the same reason', () => {
    const requestAbort = new RequestAbort();
    const signal = requestAbort.signal;
    expect(signal.aborted).toBe(false);
    const reason = new Error('idle');
    requestAbort.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(requestAbort.signal).toBe(signal);
  });

  it('gives an already aborted AbortSignal when asked after the abort', () => {
    const requestAbort = new RequestAbort();
    const reason = new Error('closed');
    requestAbort.abort(reason);
    expect(requestAbort.signal.aborted).toBe(true);
    expect(requestAbort.signal.reason).toBe(reason);
  });
});
