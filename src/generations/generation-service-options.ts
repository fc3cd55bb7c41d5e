/**
 * The settings and dependencies of the generation service (`generation-service.ts`): the provider
 * registry, where events, images, conversations and ended generations go, the limits of a
 * generation, who is told about it, and the scale-out seam. Durations in ms.
 */
import type { ConversationLimits, ConversationStore } from '../conversations/conversation-store.js';
import type { ImageStore } from '../images/image-store.js';
import type { Logger } from '../operations/logger.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';
import type { EventLog } from './event-log.js';
import type { GenerationHistory } from './generation-history.js';
import type { GenerationObserver } from './generation-observer.js';
import type { GenerationPubSub } from './generation-pub-sub.js';
import type { TokenLimits } from './generation-requests.js';
import type { GenerationTracer } from './generation-tracer.js';
import type { ScaleOut } from './scale-out.js';

/** Dependencies and settings of the service. */
export interface GenerationServiceOptions {
  registry: ProviderRegistry;
  eventLog: EventLog;
  pubSub: GenerationPubSub;
  /** Where image bytes are checked, stored and downloaded. */
  imageStore: ImageStore;
  /** How long a finished generation stays queryable and replayable, ms. */
  retentionMs: number;
  /** Most finished generations kept; beyond it the oldest are forgotten before their time. Default: no limit. */
  maxRetained?: number;
  /** Where conversations are kept. */
  conversations: ConversationStore;
  /** Limits of a conversation (the new messages of one request must fit them). */
  conversationLimits?: Pick<ConversationLimits, 'maxMessages' | 'maxCharacters'>;
  /** Shortest time between two `chat-token-delta` events of one generation, ms (see `DeltaCoalescer`); default 0. */
  deltaCoalesceMs?: number;
  /** Token limits of chat requests (see `TokenLimits`). Default: none. */
  tokenLimits?: TokenLimits;
  /**
   * Longest time one generation may run, from its start (a wait for a free model sequence or a
   * worker included) to its end, ms (`GENERATION_TIMEOUT_MS`); past it the generation ends FAILED
   * with code `GENERATION_TIMEOUT`, keeping the text that streamed. Default: no limit.
   */
  generationTimeoutMs?: number;
  /** Told about generations and subscribers (metrics, logs); see `GenerationObserver`. */
  observer?: GenerationObserver;
  /** Traces each generation run here and its provider attempts (OpenTelemetry); absent = no tracing. */
  tracer?: GenerationTracer;
  /** Where unexpected failures are logged; default: a JSON logger on standard output. */
  logger?: Logger;
  /**
   * Where ended generations are kept after the retention (the database); `find` and
   * `listGenerations` read it for what memory no longer holds. Absent = nothing past the retention.
   */
  history?: GenerationHistory;
  /**
   * Scaled out: the state shared with other instances (see `scale-out.ts`). With `enqueue` (role
   * `api`), generations are queued for a worker (`runJob`) instead of run here, except one with a
   * per-request API key, so the key never enters Redis. Absent = a single instance.
   */
  scaleOut?: ScaleOut;
}
