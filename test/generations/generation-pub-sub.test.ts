/** The in-process pub/sub of generation events. */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { GenerationEvent } from '../../src/generations/generation-events.js';
import { createGenerationPubSub } from '../../src/generations/generation-pub-sub.js';

describe('createGenerationPubSub (in process)', () => {
  it('delivers to any number of subscribers of one generation, with no listener-leak warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const pubSub = createGenerationPubSub();
      const subscribers = Array.from({ length: 25 }, () => pubSub.subscribe('generation:event', 'generation-1')[Symbol.asyncIterator]());
      const firsts = subscribers.map((subscriber) => subscriber.next());
      // Each subscriber's listener is added when its first read starts; the event goes to all of them.
      await new Promise((resolve) => setImmediate(resolve));
      const event = { type: 'chat-token-delta', text: 'Once', generationId: 'generation-1', sequence: 2 } as GenerationEvent;
      pubSub.publish('generation:event', 'generation-1', event);
      expect((await Promise.all(firsts)).map((result) => result.value)).toEqual(Array.from({ length: 25 }, () => event));
      await Promise.all(subscribers.map((subscriber) => subscriber.return?.()));
      // Node emits process warnings on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});

describe('createGenerationPubSub subscriptions', () => {
  const event = (sequence: number) => ({ type: 'chat-token-delta', text: `t${sequence}`, generationId: 'generation-1', sequence }) as GenerationEvent;

  it('listens from the first next(), keeps payloads in order while nobody reads, and stops listening on return()', async () => {
    const target = new EventTarget();
    const pubSub = createGenerationPubSub(target);
    const iterator = pubSub.subscribe('generation:event', 'generation-1')[Symbol.asyncIterator]();
    expect(getEventListeners(target, 'generation:event:generation-1')).toHaveLength(0);
    const first = iterator.next();
    expect(getEventListeners(target, 'generation:event:generation-1')).toHaveLength(1);
    for (const sequence of [1, 2, 3]) pubSub.publish('generation:event', 'generation-1', event(sequence));
    pubSub.publish('generation:event', 'generation-2', event(9)); // another generation: not this subscriber's
    expect((await first).value).toEqual(event(1));
    expect((await iterator.next()).value).toEqual(event(2));
    expect((await iterator.next()).value).toEqual(event(3));
    const waiting = iterator.next();
    expect(await iterator.return!()).toEqual({ value: undefined, done: true });
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(getEventListeners(target, 'generation:event:generation-1')).toHaveLength(0);
    pubSub.publish('generation:event', 'generation-1', event(4));
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  it('publishes as graphql-yoga createPubSub does: event type "<topic>:<generation id>", payload in a CustomEvent detail', () => {
    const target = new EventTarget();
    const seen: Array<{ type: string; detail: unknown }> = [];
    target.addEventListener('generation:cancel:generation-1', (sent) => seen.push({ type: sent.type, detail: (sent as CustomEvent).detail }));
    createGenerationPubSub(target).publish('generation:cancel', 'generation-1', 'stopped by the user');
    expect(seen).toEqual([{ type: 'generation:cancel:generation-1', detail: 'stopped by the user' }]);
  });

  it('a subscriber that never reads adds no listener, and its return() is harmless', async () => {
    const target = new EventTarget();
    const iterator = createGenerationPubSub(target).subscribe('generation:event', 'generation-1')[Symbol.asyncIterator]();
    expect(await iterator.return!()).toEqual({ value: undefined, done: true });
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    expect(getEventListeners(target, 'generation:event:generation-1')).toHaveLength(0);
  });
});
