/**
 * The shared state of scaled-out instances, in one Redis (`REDIS_URL`): the event log (Redis
 * Streams), the generation records, and the pub/sub (`@graphql-yoga/redis-event-target`, which needs
 * one client for publishing and one in subscriber mode). Gaps from lost publishes are filled from
 * the streams by the generation service's subscribers. Cancellation requests are heard through one
 * pattern subscription per instance, `PSUBSCRIBE generation:cancel:*`, made when the instance
 * connects (ioredis makes it again after a reconnection): an instance running a generation needs
 * no channel of its own for it, and the channels stay those of earlier versions (each request is
 * published on `generation:cancel:{generationId}`, which per-generation subscribers hear too).
 * https://redis.io/docs/latest/develop/interact/pubsub/#pattern-matching-subscriptions
 *
 * When Redis goes away while running, ioredis reconnects by itself (`retryStrategy`); meanwhile:
 * - the command client fails fast (`enableOfflineQueue: false`: a command sent while disconnected
 *   rejects at once; one in flight when the connection dropped is retried on the reconnection and
 *   rejects after `maxRetriesPerRequest` failed reconnections), so an event that cannot be appended
 *   ends its generation with `EVENT_LOG_UNAVAILABLE` instead of waiting for Redis;
 * - the publisher drops what it cannot publish after `maxRetriesPerRequest` reconnections (subscribers
 *   find those events in the stream), and the subscriber connection keeps its `SUBSCRIBE`s queued until
 *   it is back (`maxRetriesPerRequest: null`); neither leaves a rejected promise unhandled;
 * - `unavailableReason()` names the connections that are down, for `/readyz`.
 * ioredis options: https://github.com/redis/ioredis/blob/main/API.md#new_Redis_new.
 */
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import { batchWrites } from '../batched-writes.js';
import { createScaledGenerationPubSub, topicChannel, unlimitedEventTarget, type GenerationPubSub } from '../generations/generation-pub-sub.js';
import { RedisEventLog } from './redis-event-log.js';
import { RedisGenerationRecords } from './redis-generation-records.js';

/** Everything the generation service shares through Redis. */
export interface RedisState {
  eventLog: RedisEventLog;
  sharedRecords: RedisGenerationRecords;
  /** The client for plain commands (other shared stores use it too). */
  commands: Redis;
  pubSub: GenerationPubSub;
  /** Connects the clients; rejects with one line naming the (password-free) URL when Redis cannot be reached. */
  connect(): Promise<void>;
  /**
   * Undefined while every connection is up (or before `connect`); else one line naming the
   * (password-free) URL, the connections that are down and the last error, e.g.
   * `Redis at redis://127.0.0.1:6379/0 is unreachable (commands, subscriber: connect ECONNREFUSED 127.0.0.1:6379)`.
   */
  unavailableReason(): string | undefined;
  /** Closes the clients (at once for those that are not connected). */
  close(): Promise<void>;
}

/** The pattern every instance subscribes to for cancellation requests: `generation:cancel:*`. */
export const CANCELLATION_PATTERN = `${topicChannel('generation:cancel', '')}*`;

/** `redis://user:secret@host:6379/0` → `redis://host:6379/0`, for messages. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return 'REDIS_URL';
  }
}

/**
 * Creates the clients (not yet connected) for `url`.
 * @param retentionMs how long event streams and records are kept after their last write, ms.
 */
export function createRedisState(url: string, retentionMs: number): RedisState {
  let connected = false;
  let lastError: Error | undefined;
  const options = {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectionName: 'graphql-ai-gateway',
    // At start-up one refusal is the answer (fail fast); once connected, reconnect with a growing delay.
    retryStrategy: (attempt: number) => (connected ? Math.min(attempt * 200, 2_000) : null),
  };
  // Commands fail at once while Redis is away: requests get a clear error instead of waiting.
  // No ioredis auto-pipelining: the batched socket writes below already send what one turn of the
  // event loop issues in one system call, and auto-pipelining only added its own work per command
  // (a pipeline per tick, a deferred send) — `docs/performance.md`, "Scaled out over Redis".
  const commands = new Redis(url, { ...options, enableOfflineQueue: false });
  const publisher = new Redis(url, options);
  // SUBSCRIBE/UNSUBSCRIBE sent while Redis is away wait for the reconnection (then autoResubscribe applies).
  const subscriber = new Redis(url, { ...options, maxRetriesPerRequest: null });
  const clients = { commands, publisher, subscriber };
  for (const client of Object.values(clients)) {
    // ioredis reconnects by itself; without a listener an 'error' event would crash the process.
    client.on('error', (error: Error) => (lastError = error));
    // ioredis writes every command, and every command of a MULTI, with a write of its own: what the
    // instance sends in one event-loop turn leaves in one system call instead (each new connection).
    client.on('connect', () => batchWrites(client.stream));
  }
  const noteError = (error: unknown) => void (lastError = error as Error);
  // The event target neither awaits nor catches these calls: a rejection must not go unhandled.
  const publishClient = {
    publish: (channel: string, message: string) => publisher.publish(channel, message).catch(noteError),
  };
  // SUBSCRIBEs not yet confirmed by Redis, by channel: a follower re-reads the log once its own is (see event-follower.ts).
  const pendingSubscriptions = new Map<string, Promise<unknown>>();
  const subscribeClient = {
    on: (event: 'message', listener: (channel: string, message: string) => void) => subscriber.on(event, listener),
    subscribe: (channel: string) => {
      const confirmed = subscriber.subscribe(channel).catch(noteError);
      pendingSubscriptions.set(channel, confirmed);
      void confirmed.then(() => pendingSubscriptions.get(channel) === confirmed && pendingSubscriptions.delete(channel));
      return confirmed;
    },
    unsubscribe: (channel: string) => subscriber.unsubscribe(channel).catch(noteError),
  };
  // Cancellation requests from the pattern subscription, dispatched in-process by channel.
  const cancellations = unlimitedEventTarget();
  subscriber.on('pmessage', (pattern: string, channel: string, message: string) => {
    if (pattern !== CANCELLATION_PATTERN) return;
    let reason: unknown;
    try {
      reason = message === '' ? null : JSON.parse(message);
    } catch {
      return; // not a request this gateway published
    }
    cancellations.dispatchEvent(new CustomEvent(channel, { detail: reason }));
  });
  return {
    // The log publishes each event as it appends it, on the channel the shared pub/sub listens to.
    eventLog: new RedisEventLog(commands, retentionMs, (generationId) => topicChannel('generation:event', generationId)),
    sharedRecords: new RedisGenerationRecords(commands, retentionMs),
    commands,
    pubSub: createScaledGenerationPubSub(
      createRedisEventTarget({ publishClient: publishClient as unknown as Redis, subscribeClient: subscribeClient as unknown as Redis }) as unknown as EventTarget,
      cancellations,
      async (channel) => void (await pendingSubscriptions.get(channel)),
    ),
    async connect() {
      try {
        await Promise.all(Object.values(clients).map((client) => client.connect()));
        await Promise.all([commands.ping(), subscriber.psubscribe(CANCELLATION_PATTERN)]);
        connected = true;
      } catch (error) {
        Object.values(clients).forEach((client) => client.disconnect());
        throw new Error(`Cannot reach Redis at ${redactRedisUrl(url)}: ${(lastError ?? (error as Error)).message}`);
      }
    },
    unavailableReason() {
      if (!connected) return undefined;
      const down = Object.entries(clients).filter(([, client]) => client.status !== 'ready').map(([name]) => name);
      if (down.length === 0) return undefined;
      return `Redis at ${redactRedisUrl(url)} is unreachable (${down.join(', ')}${lastError ? `: ${lastError.message}` : ''})`;
    },
    async close() {
      connected = false;
      // QUIT would wait for a lost connection (the subscriber's forever): a client that is not connected is dropped.
      await Promise.all(
        Object.values(clients).map((client) => (client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect())),
      );
    },
  };
}
