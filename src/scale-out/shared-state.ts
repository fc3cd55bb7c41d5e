/**
 * Everything an instance shares with others through one Redis (`REDIS_URL`; see
 * `docs/scaling-out.md`), built in one place: the event log and pub/sub, the generation records,
 * owner leases and lost-instance recovery ({@link RedisScaleOut}), conversations, the rate-limit
 * counters (starts, and virtual keys' tokens per minute), the circuits, and for roles `api`/`worker` the BullMQ queue. The app imports this
 * module only when `REDIS_URL` is set, so a single instance loads none of it.
 */
import type { Store } from '@envelop/rate-limiter';
import type { Config } from '../config.js';
import type { ConversationStore } from '../conversations/conversation-store.js';
import { RedisConversationStore } from '../conversations/redis-conversation-store.js';
import type { EventLog } from '../generations/event-log.js';
import type { GenerationPubSub } from '../generations/generation-pub-sub.js';
import type { GenerationService } from '../generations/generation-service.js';
import type { ScaleOut } from '../generations/scale-out.js';
import type { Logger } from '../operations/logger.js';
import type { CircuitBreakerOptions, ProviderCircuitBreaker } from '../providers/circuit-breaker.js';
import type { TokenRateStore } from '../security/token-rate-limiter.js';
import { RedisRateLimitStore } from './redis-rate-limit-store.js';
import { RedisTokenRateStore } from './redis-token-rate-store.js';
import { GenerationLeases } from './generation-leases.js';
import type { GenerationQueue } from './generation-queue.js';
import { RedisCircuitBreaker } from './redis-circuit-breaker.js';
import { RedisScaleOut } from './redis-scale-out.js';
import { createRedisState } from './redis-state.js';

/** The shared state of one instance. */
export interface SharedState {
  eventLog: EventLog;
  pubSub: GenerationPubSub;
  /** What the generation service does across instances. */
  scaleOut: ScaleOut;
  /** Conversations every instance sees. */
  conversations: ConversationStore;
  /** One rate-limit budget per caller across instances. */
  rateLimitStore: Store;
  /** Virtual keys' tokens per minute across instances. */
  tokenRateStore: TokenRateStore;
  /** A circuit breaker whose circuits every instance shares (this instance's view while Redis is away). */
  createBreaker(options: CircuitBreakerOptions): ProviderCircuitBreaker;
  /** One line naming the Redis connections that are down, or undefined (for `/readyz`). */
  unavailableReason(): string | undefined;
  /** Connects to Redis. @throws Error naming the (password-free) URL when it cannot be reached. */
  connect(): Promise<void>;
  /** Roles `api`/`worker`: ends generations whose job was lost; a worker also takes jobs, run by `generations`. */
  startRole(generations: GenerationService): Promise<void>;
  /** Stops taking and watching jobs (roles `api`/`worker`). */
  closeQueue(): Promise<void>;
  /** Closes the Redis clients. */
  close(): Promise<void>;
}

/**
 * Creates the shared state for `config.redisUrl` (not yet connected).
 * @param providerIds every provider id (one queue each, for roles `api`/`worker`).
 */
export async function createSharedState(config: Config & { redisUrl: string }, providerIds: string[], logger: Logger): Promise<SharedState> {
  const redis = createRedisState(config.redisUrl, config.generationRetentionMs);
  // Roles `api` and `worker` share a BullMQ queue per provider (config requires REDIS_URL for them).
  const queue: GenerationQueue | undefined =
    config.role === 'all'
      ? undefined
      : new (await import('./generation-queue.js')).GenerationQueue({
          redisUrl: config.redisUrl,
          prefix: config.queuePrefix,
          providerIds,
          lockMs: config.workerLockMs,
          concurrency: (providerId) => config.workerConcurrencyByProvider[providerId] ?? config.workerConcurrency,
          onError: (error) => logger.warn({ err: error }, 'generation queue: Redis error'),
        });
  const scaleOut = new RedisScaleOut({
    sharedRecords: redis.sharedRecords,
    eventLog: redis.eventLog,
    pubSub: redis.pubSub,
    // Generations run here (not queued ones) hold an owner lease, so others can end them (INSTANCE_LOST) if this instance dies.
    leases: new GenerationLeases(redis.commands, { leaseMs: config.generationLeaseMs, logger }),
    recheckIntervalMs: config.subscriptionRecheckMs,
    ...(queue && config.role === 'api' && { queue }),
    logger,
  });
  return {
    eventLog: redis.eventLog,
    pubSub: redis.pubSub,
    scaleOut,
    conversations: new RedisConversationStore(redis.commands, {
      maxMessages: config.conversationMaxMessages,
      maxCharacters: config.conversationMaxCharacters,
      retentionMs: config.conversationRetentionMs,
    }),
    rateLimitStore: new RedisRateLimitStore(redis.commands),
    tokenRateStore: new RedisTokenRateStore(redis.commands),
    createBreaker: (options) => new RedisCircuitBreaker(redis.commands, { ...options, logger }),
    unavailableReason: () => redis.unavailableReason(),
    connect: () => redis.connect(),
    async startRole(generations) {
      if (!queue) return;
      // Both roles end generations whose job failed (a dead worker's job, moved to failed by the stalled check).
      await queue.watchLostJobs((generationId, reason) => {
        generations.markLost(generationId, reason).catch((error: unknown) => {
          logger.error({ err: error, generationId }, 'cannot end a generation whose worker was lost');
        });
      });
      if (config.role === 'worker') await queue.startWorkers((data) => generations.runJob(data));
    },
    closeQueue: async () => {
      await queue?.close();
    },
    close: () => redis.close(),
  };
}
