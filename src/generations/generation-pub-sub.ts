/**
 * Live delivery of generation events over an `EventTarget`, routed by generation id: the process's
 * own one, or one that spreads events across instances (`@graphql-yoga/redis-event-target`), without
 * touching resolvers or the service.
 *
 * Topics and payloads are those of graphql-yoga's `createPubSub` (event type `<topic>:<generationId>`,
 * payload in a `CustomEvent`'s `detail`), so instances of earlier versions share Redis channels with
 * this one. The subscribing side is ours rather than `createPubSub`'s: its `Repeater` calls
 * `Object.create` on a promise for every event, and on Node 20 that keeps the subscriber's state
 * through young-generation collections, where this one keeps nothing (likely because each such
 * object gets a hidden class of its own, made in old space; `docs/performance.md`).
 */
import { setMaxListeners } from 'node:events';
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
export interface GenerationPubSub {
  /** Sends the payload to every current subscriber of the topic and generation (at most once each; no replay). */
  publish<Topic extends keyof GenerationPubSubTopics>(topic: Topic, ...[generationId, payload]: GenerationPubSubTopics[Topic]): void;
  /**
   * The payloads published for the topic and generation, in order, from the first `next()` call of
   * its iterator (which starts listening) until `return()` (which stops). Payloads not yet read are
   * buffered without limit: the subscriber drains them as they come (see event-follower.ts).
   * `options.local`: the generation runs on this instance, so its events can be heard in-process
   * (see {@link createScaledGenerationPubSub}); the in-process pub/sub ignores it.
   */
  subscribe<Topic extends keyof GenerationPubSubTopics>(
    topic: Topic,
    generationId: string,
    options?: { local?: boolean },
  ): AsyncIterable<GenerationPubSubTopics[Topic][1]>;
  /**
   * Scaled out: resolves once subscriptions made so far to the topic and generation across
   * instances are in force (Redis confirmed the `SUBSCRIBE`): a payload published after that
   * reaches them, one published before may not. Absent when subscriptions are in force at once.
   */
  whenListening?(topic: keyof GenerationPubSubTopics, generationId: string): Promise<void>;
}

/**
 * Creates the in-process pub/sub, or one over the given event target. The in-process one's
 * `EventTarget` allows any number of listeners: every subscriber of a generation listens to its
 * topic, and Node's default (a warning past 10 listeners of one event) would flag a popular
 * generation as a leak.
 */
export function createGenerationPubSub(eventTarget?: EventTarget): GenerationPubSub {
  const target = eventTarget ?? unlimitedEventTarget();
  return {
    publish(topic, generationId, payload) {
      target.dispatchEvent(new CustomEvent(topicChannel(topic, generationId), { detail: payload }));
    },
    subscribe(topic, generationId) {
      return new TopicSubscription(target, topicChannel(topic, generationId));
    },
  };
}

/** The channel (the `EventTarget` event type) of a topic and generation: `generation:event:{generationId}`. */
export function topicChannel(topic: keyof GenerationPubSubTopics, generationId: string): string {
  return `${topic}:${generationId}`;
}

/**
 * The pub/sub of a scaled-out instance, whose event log publishes each event across instances as
 * it appends it (`scale-out/redis-event-log.ts`, on {@link topicChannel}'s channel): publishing a
 * `generation:event` here dispatches it in-process only, where subscribers that say so
 * (`{ local: true }`: the generation runs here) hear it — as soon as it is in the log, without a
 * round trip through Redis and without a channel subscription of their own. The others listen to
 * `sharedTarget` (`@graphql-yoga/redis-event-target`). `generation:cancel` is published through
 * `sharedTarget` (a cancellation comes from whichever instance the caller reached) and heard on
 * `cancellations`: an in-process target the instance feeds from one pattern subscription to every
 * cancellation channel (see `scale-out/redis-state.ts`), so running a generation costs no
 * `SUBSCRIBE` and `UNSUBSCRIBE` of its own. `whenListening(channel)` tells when the shared
 * target's subscription to a channel is in force.
 */
export function createScaledGenerationPubSub(
  sharedTarget: EventTarget,
  cancellations: EventTarget,
  whenListening: (channel: string) => Promise<void>,
): GenerationPubSub {
  const local = createGenerationPubSub();
  const shared = createGenerationPubSub(sharedTarget);
  const cancelRequests = createGenerationPubSub(cancellations);
  return {
    whenListening: (topic, generationId) => whenListening(topicChannel(topic, generationId)),
    publish(topic, ...[generationId, payload]) {
      if (topic === 'generation:event') local.publish('generation:event', generationId, payload as GenerationEvent);
      else shared.publish(topic, ...([generationId, payload] as GenerationPubSubTopics[typeof topic]));
    },
    subscribe(topic, generationId, options) {
      if (topic === 'generation:cancel') return cancelRequests.subscribe(topic, generationId);
      return options?.local ? local.subscribe(topic, generationId) : shared.subscribe(topic, generationId);
    },
  };
}

/**
 * An in-process `EventTarget` that takes any number of listeners per event type without a warning
 * (e.g. one per running generation listening for its cancellation).
 */
export function unlimitedEventTarget(): EventTarget {
  const target = new EventTarget();
  setMaxListeners(0, target);
  return target;
}

/** One subscriber's listener and queue: an async iterator over the `detail`s of one event type. */
class TopicSubscription<Payload> implements AsyncIterableIterator<Payload, undefined> {
  private listening = false;
  private done = false;
  /** Payloads published and not yet read. */
  private readonly buffered: Payload[] = [];
  /** `next()` calls waiting for a payload, oldest first. */
  private readonly waiting: Array<(result: IteratorResult<Payload, undefined>) => void> = [];
  private readonly listener = (event: Event): void => {
    if (this.done) return;
    const payload = (event as CustomEvent<Payload>).detail;
    const reader = this.waiting.shift();
    if (reader) reader({ value: payload, done: false });
    else this.buffered.push(payload);
  };

  constructor(
    private readonly target: EventTarget,
    private readonly type: string,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Payload, undefined>> {
    if (!this.listening && !this.done) {
      this.listening = true;
      this.target.addEventListener(this.type, this.listener);
    }
    if (this.buffered.length > 0) return Promise.resolve({ value: this.buffered.shift()!, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Stops listening, drops what is buffered and ends every waiting `next()`. */
  return(): Promise<IteratorResult<Payload, undefined>> {
    if (!this.done) {
      this.done = true;
      if (this.listening) this.target.removeEventListener(this.type, this.listener);
      this.buffered.length = 0;
      for (const reader of this.waiting.splice(0)) reader({ value: undefined, done: true });
    }
    return Promise.resolve({ value: undefined, done: true });
  }
}
