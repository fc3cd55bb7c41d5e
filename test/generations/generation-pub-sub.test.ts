/** The in-process pub/sub of generation events. */
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
