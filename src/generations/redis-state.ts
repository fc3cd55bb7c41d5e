/**
 * The shared state of scaled-out instances, in one Redis (`REDIS_URL`): the event log (Redis
 * Streams), the generation records, and the pub/sub (`@graphql-yoga/redis-event-target`, which needs
 * one client for publishing and one in subscriber mode). Gaps from lost publishes are filled from
 * the streams by the generation service's subscribers.
 */
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import { createGenerationPubSub, type GenerationPubSub } from './generation-pub-sub.js';
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
  /** Closes the clients. */
  close(): Promise<void>;
}

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
  const commands = new Redis(url, options);
  const publisher = new Redis(url, options);
  const subscriber = new Redis(url, options);
  const clients = [commands, publisher, subscriber];
  for (const client of clients) {
    // ioredis reconnects by itself; without a listener an 'error' event would crash the process.
    client.on('error', (error: Error) => (lastError = error));
  }
  return {
    eventLog: new RedisEventLog(commands, retentionMs),
    sharedRecords: new RedisGenerationRecords(commands, retentionMs),
    commands,
    pubSub: createGenerationPubSub(createRedisEventTarget({ publishClient: publisher, subscribeClient: subscriber }) as unknown as EventTarget),
    async connect() {
      try {
        await Promise.all(clients.map((client) => client.connect()));
        await commands.ping();
        connected = true;
      } catch (error) {
        clients.forEach((client) => client.disconnect());
        throw new Error(`Cannot reach Redis at ${redactRedisUrl(url)}: ${(lastError ?? (error as Error)).message}`);
      }
    },
    async close() {
      await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}
