/**
 * Live delivery of generation events. Yoga's `createPubSub` with one typed topic, routed by
 * generation id; pass a different `EventTarget` (e.g. `@graphql-yoga/redis-event-target`)
 * to spread events across instances without touching resolvers or the service.
 */
import { setMaxListeners } from 'node:events';
import { createPubSub, type PubSub } from 'graphql-yoga';
import type { GenerationEvent } from './generation-events.js';

/**
 * Topic map, routed by generation id: `generation:event` carries one numbered event;
 * `generation:cancel` asks whichever instance runs the generation to cancel it (with the reason).
 */
export type GenerationPubSubTopics = {
  'generation:event': [generationId: string, event: GenerationEvent];
  'generation:cancel': [generationId: string, reason: string];
};

/** The pub/sub the generation service publishes to and subscribers follow. */
export type GenerationPubSub = PubSub<GenerationPubSubTopics>;

/**
 * Creates the in-process pub/sub, or one over the given event target. The in-process one's
 * `EventTarget` allows any number of listeners: every subscriber of a generation listens to its
 * topic, and Node's default (a warning past 10 listeners of one event) would flag a popular
 * generation as a leak.
 */
export function createGenerationPubSub(eventTarget?: EventTarget): GenerationPubSub {
  if (eventTarget) return createPubSub<GenerationPubSubTopics>({ eventTarget: eventTarget as never });
  const inProcess = new EventTarget();
  setMaxListeners(0, inProcess);
  return createPubSub<GenerationPubSubTopics>({ eventTarget: inProcess as never });
}
