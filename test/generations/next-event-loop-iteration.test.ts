/**
 * `nextEventLoopIteration` resolves only after the `setImmediate` callbacks the current turn queued
 * (where batched socket writes are flushed), including those queued by its promise jobs.
 */
import { describe, expect, it } from 'vitest';
import { nextEventLoopIteration } from '../../src/generations/next-event-loop-iteration.js';

describe('nextEventLoopIteration', () => {
  it('resolves after every setImmediate queued in this turn, before or after it was called', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('queued before'));
    const waited = nextEventLoopIteration().then(() => order.push('next iteration'));
    // A write batched by a promise job of this turn (after the wait began) queues its flush later.
    void Promise.resolve().then(() => setImmediate(() => order.push('queued by a promise job')));
    await waited;
    expect(order).toEqual(['queued before', 'queued by a promise job', 'next iteration']);
  });
});
