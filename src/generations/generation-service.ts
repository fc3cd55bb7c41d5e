/**
 * The generation service: the one place that runs generations. Transports (GraphQL resolvers,
 * REST routes) hand it requests; it resolves the provider, runs the provider's async generator,
 * numbers the events, appends them to the event log, publishes them, and owns each generation's
 * AbortController. Subscribers replay from the log, then follow live events.
 */
import { ImageStoreError, type CheckedImage, type ImageStore } from '../images/image-store.js';
import type { ConversationLimits, ConversationStore } from '../conversations/conversation-store.js';
import {
  ProviderError,
  type ChatMessage,
  type ChatProvider,
  type ChatRequest,
  type Provider,
  type FinishReason,
  type ImageProvider,
  type ImageRequest,
  type ProviderImage,
  type Usage,
} from '../providers/provider.js';
import type { ProviderRegistry, ResolvedModel } from '../providers/provider-registry.js';
import type { EventLog } from './event-log.js';
import { DeltaCoalescer } from './delta-coalescer.js';
import { GenerationAbort } from './generation-abort.js';
import { nextEventLoopIteration } from './next-event-loop-iteration.js';
import { followEvents, type FollowControl, type FollowSource } from './event-follower.js';
import { newGenerationId } from './generation-ids.js';
import { GatewayError } from './gateway-error.js';
import { listRecords, type GenerationFilter, type GenerationPage } from './generation-listing.js';
import {
  isTerminalEvent,
  type GeneratedImage,
  type GenerationErrorShape,
  type GenerationEvent,
  type UnnumberedGenerationEvent,
} from './generation-events.js';
import {
  chatCompletionInputSchema,
  imageGenerationInputSchema,
  parseInput,
  type ChatCompletionInput,
  type GenerationOrigin,
  type ImageGenerationInput,
  type ImageResponseFormat,
} from './generation-inputs.js';
import type { GenerationPubSub } from './generation-pub-sub.js';
import type { GenerationJobData } from './generation-queue.js';
import type { GenerationObserver } from '../operations/generation-observer.js';
import { defaultLogger, type Logger } from '../operations/logger.js';
import type { SharedGenerationRecord, SharedGenerationRecords } from './redis-generation-records.js';
import type { GenerationLeases } from './generation-leases.js';
import {
  isFinalStatus,
  type ChatGenerationRecord,
  type GenerationRecord,
  type GenerationStatus,
  type ImageGenerationRecord,
} from './generation-records.js';

export type { ChatCompletionInput, GenerationOrigin, ImageGenerationInput } from './generation-inputs.js';
export type { ChatGenerationRecord, GenerationRecord, GenerationStatus, ImageGenerationRecord } from './generation-records.js';

interface RunningGeneration {
  record: GenerationRecord;
  controller: GenerationAbort;
  /** Settles when the terminal event has been appended and published. */
  finished: Promise<void>;
  /** Stops listening for cancellation requests from other instances. */
  stopListening: () => void;
}

/** Every candidate provider failed; `failures` holds each one's error, in the order tried. */
export class AllProvidersFailedError extends Error {
  override readonly name = 'AllProvidersFailedError';
  readonly code = 'ALL_PROVIDERS_FAILED';
  constructor(readonly failures: GenerationErrorShape[]) {
    super(`All ${failures.length} providers failed: ${failures.map((failure) => `${failure.provider ?? '?'}: ${failure.code}: ${failure.message}`).join('; ')}`);
  }
}

/** Why a generation was cancelled; the abort reason carried by its AbortController. */
export class GenerationCancellation extends Error {
  override readonly name = 'GenerationCancellation';
}

/** The abort reason of a generation that ran past `generationTimeoutMs`: it ends FAILED with code `GENERATION_TIMEOUT`. */
export class GenerationTimeout extends Error {
  override readonly name = 'GenerationTimeout';
  readonly code = 'GENERATION_TIMEOUT';
}

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
  /** Records shared with other instances (scaled out over Redis); absent = this instance only. */
  sharedRecords?: SharedGenerationRecords;
  /** While a subscriber waits for live events, re-read the log this often, ms (scaled out: lost publishes); absent = never. */
  recheckIntervalMs?: number;
  /**
   * Scaled out: owner leases of the generations this instance runs itself (not queued ones). A
   * subscriber's re-check or a lookup that finds another instance's running generation without its
   * lease ends it with `INSTANCE_LOST` (see generation-leases.ts). Absent = no leases.
   */
  leases?: GenerationLeases;
  /** Limits of a conversation (the new messages of one request must fit them). */
  conversationLimits?: Pick<ConversationLimits, 'maxMessages' | 'maxCharacters'>;
  /** Shortest time between two `chat-token-delta` events of one generation, ms (see `DeltaCoalescer`); default 0. */
  deltaCoalesceMs?: number;
  /**
   * Token limits of chat requests (`MAX_TOKENS_LIMIT`, `DEFAULT_MAX_TOKENS`): a request's `maxTokens`
   * above `maxTokensLimit` is refused (`BAD_USER_INPUT`); a request without one gets
   * `defaultMaxTokens` when set (otherwise the provider's own bound applies: a local model stops when
   * its context is full, an upstream uses its own default). Units: tokens. Default: no limits.
   */
  tokenLimits?: { maxTokensLimit?: number; defaultMaxTokens?: number };
  /**
   * Longest time one generation may run, from its start (a wait for a free model sequence or a
   * worker included) to its end, ms (`GENERATION_TIMEOUT_MS`); past it the generation ends FAILED
   * with code `GENERATION_TIMEOUT`, keeping the text that streamed. Default: no limit.
   */
  generationTimeoutMs?: number;
  /** Told about generations and subscribers (metrics, logs); see `GenerationObserver`. */
  observer?: GenerationObserver;
  /** Where unexpected failures are logged; default: a JSON logger on standard output. */
  logger?: Logger;
  /**
   * Role `api` (needs `sharedRecords`): generations are not run here but queued for a worker
   * (`runJob`); one with a per-request API key still runs here, so the key never enters Redis.
   */
  queue?: { enqueue(data: GenerationJobData): Promise<void> };
}


/** What `emit` keeps per generation. */
interface EmissionState {
  /** Settles when the last emitted event has been appended and published (or refused). */
  chain: Promise<void>;
  /** Sequence of the last event the log took. */
  stored: number;
  /** Set once an append failed: later events are refused with it, and the terminal event follows `stored`. */
  failure?: GatewayError;
}

/** Races a promise against the generation's abort, so a provider that ignores the signal cannot hold it. */
type AbortRace = <T>(promise: Promise<T>) => Promise<T>;

/** The body of a generation: runs the provider and returns the terminal success event. */
type GenerationWork = (signal: GenerationAbort, race: AbortRace) => Promise<UnnumberedGenerationEvent>;

/** How long a cancellation of a generation running on another instance waits for its terminal event, ms. */
const REMOTE_CANCEL_WAIT_MS = 10_000;


/** Starts, cancels, looks up and streams generations. */
export class GenerationService {
  private readonly records = new Map<string, GenerationRecord>();
  private readonly running = new Map<string, RunningGeneration>();
  /** Each generation's appends (the next one waits for the last), what the log took, and how it failed. */
  private readonly emissions = new WeakMap<GenerationRecord, EmissionState>();
  /** Terminal events the event log could not take (Redis away), by generation id, until they are written. */
  private readonly unstoredEnds = new Map<string, { event: GenerationEvent; error: GatewayError }>();
  /** Subscribers following each generation here, so they can be woken when its end cannot be stored. */
  private readonly followControls = new Map<string, Set<FollowControl>>();
  /** What `followEvents` needs of this service (see event-follower.ts). */
  private readonly followSource: FollowSource;
  /**
   * Finished generations in the order they finished, each with the time it is to be forgotten (ms,
   * on `performance.now()`'s clock). One timer, for the first of them, serves all: a timer per kept
   * generation cost about 270 bytes of heap each (README, Performance). The retention time is the
   * same for all, so the order of finishing is the order of expiry.
   */
  private readonly retained = new Map<string, number>();
  /** Fires when the first of `retained` is due; unset while nothing is kept. */
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Subscribers currently following a generation, each with a way to hear when it has ended. */
  private readonly followers = new Set<Promise<void>>();
  private stopped = false;
  /** Role `api`: followers of queued generations, which keep the returned records' status current. */
  private readonly remoteWatches = new Set<FollowControl>();

  constructor(private readonly options: GenerationServiceOptions) {
    this.followSource = {
      eventLog: this.options.eventLog,
      pubSub: this.options.pubSub,
      ...(this.options.recheckIntervalMs !== undefined && { recheckIntervalMs: this.options.recheckIntervalMs }),
      register: (generationId, control) => {
        let controls = this.followControls.get(generationId);
        if (!controls) this.followControls.set(generationId, (controls = new Set()));
        controls.add(control);
        return () => {
          controls.delete(control);
          if (controls.size === 0) this.followControls.delete(generationId);
        };
      },
      sharedEnd: (record) => this.sharedEnd(record),
      settledLastSequence: (record) => this.settledLastSequence(record),
      unstoredEnd: (generationId) => this.unstoredEnds.get(generationId)?.error,
    };
  }

  /**
   * Validates a chat request, resolves provider and model, and starts the generation in the background.
   * Returns with the RUNNING record one event-loop turn later (after the turn's check phase, where
   * undici writes a request on a reused connection; see `launch`); event 1
   * (`chat-completion-started`) is already in the log.
   * `origin` (the HTTP request's id) goes to the observers only.
   * @throws GatewayError `BAD_USER_INPUT`, `MODEL_NOT_FOUND` or `PROVIDER_NOT_FOUND`; nothing is started then.
   */
  async startChat(input: ChatCompletionInput, origin: GenerationOrigin = {}): Promise<ChatGenerationRecord> {
    this.assertRunning();
    const values = parseInput(chatCompletionInputSchema, input);
    const maxTokens = this.maxTokensOf(values.maxTokens);
    // A per-request provider key goes to one provider only: no fallback may hand it to another upstream.
    const candidates = (await this.options.registry.chatCandidates(values)).slice(0, values.apiKey ? 1 : undefined);
    const conversationId = values.conversationId ?? undefined;
    const { messages, newMessages } = await this.withHistory(conversationId, values.messages);
    const request: ChatRequest = {
      model: candidates[0]!.model,
      messages,
      ...(messages.length > newMessages.length && { historyLength: messages.length - newMessages.length }),
      ...(values.temperature != null && { temperature: values.temperature }),
      ...(values.topP != null && { topP: values.topP }),
      ...(maxTokens !== undefined && { maxTokens }),
      ...(values.stop != null && values.stop.length > 0 && { stop: values.stop }),
      ...(values.seed != null && { seed: values.seed }),
      ...(values.apiKey && { apiKey: values.apiKey }),
    };
    const first = candidates[0]!;
    const record: ChatGenerationRecord = {
      kind: 'chat',
      id: newGenerationId(),
      status: 'running',
      provider: first.provider.id,
      model: first.model,
      createdAt: new Date(),
      text: '',
      lastSequence: 0,
      ...(conversationId !== undefined && { conversationId }),
      ...(origin.callerId !== undefined && { owner: origin.callerId }),
    };
    const started: UnnumberedGenerationEvent = { type: 'chat-completion-started', provider: first.provider.id, model: first.model };
    if (this.options.queue && !values.apiKey) {
      const candidatePairs = candidates.map(({ provider, model }) => ({ providerId: provider.id, model }));
      await this.enqueue(record, started, { generationId: record.id, kind: 'chat', candidates: candidatePairs, request, newMessages });
      return record;
    }
    await this.launch(record, started, this.chatWork(record, candidates, request, newMessages), origin);
    return record;
  }

  /**
   * Validates an image request, resolves provider and model, and starts the generation in the background.
   * Returns with the RUNNING record one event-loop turn later (after the turn's check phase, where
   * undici writes a request on a reused connection; see `launch`); event 1
   * (`image-generation-started`) is already in the log.
   * `origin` as for `startChat`.
   * @throws GatewayError `BAD_USER_INPUT`, `MODEL_NOT_FOUND` or `PROVIDER_NOT_FOUND`; nothing is started then.
   */
  async startImages(input: ImageGenerationInput, origin: GenerationOrigin = {}): Promise<ImageGenerationRecord> {
    this.assertRunning();
    const values = parseInput(imageGenerationInputSchema, input);
    const candidates = (await this.options.registry.imageCandidates(values)).slice(0, values.apiKey ? 1 : undefined);
    const { provider, model } = candidates[0]!;
    const request: ImageRequest = {
      model,
      prompt: values.prompt,
      n: values.n ?? 1,
      ...(values.width != null && { width: values.width }),
      ...(values.height != null && { height: values.height }),
      ...(values.aspectRatio != null && { aspectRatio: values.aspectRatio }),
      ...(values.seed != null && { seed: values.seed }),
      ...(values.numInferenceSteps != null && { numInferenceSteps: values.numInferenceSteps }),
      ...(values.negativePrompt != null && values.negativePrompt !== '' && { negativePrompt: values.negativePrompt }),
      ...(values.apiKey && { apiKey: values.apiKey }),
    };
    const record: ImageGenerationRecord = {
      kind: 'image',
      id: newGenerationId(),
      status: 'running',
      provider: provider.id,
      model,
      createdAt: new Date(),
      prompt: values.prompt,
      images: [],
      lastSequence: 0,
      ...(origin.callerId !== undefined && { owner: origin.callerId }),
    };
    const responseFormat = values.responseFormat ?? 'url';
    const started: UnnumberedGenerationEvent = { type: 'image-generation-started', provider: provider.id, model };
    if (this.options.queue && !values.apiKey) {
      const candidatePairs = candidates.map((candidate) => ({ providerId: candidate.provider.id, model: candidate.model }));
      await this.enqueue(record, started, { generationId: record.id, kind: 'image', candidates: candidatePairs, request, responseFormat });
      return record;
    }
    await this.launch(record, started, this.imageWork(record, candidates, request, responseFormat), origin);
    return record;
  }

  /**
   * The token limit a chat request runs with: its own (at most `maxTokensLimit`), else `defaultMaxTokens`, else none.
   * @throws GatewayError `BAD_USER_INPUT` naming the limit when the request asks for more than `maxTokensLimit`.
   */
  private maxTokensOf(requested: number | null | undefined): number | undefined {
    const { maxTokensLimit, defaultMaxTokens } = this.options.tokenLimits ?? {};
    if (requested == null) return defaultMaxTokens;
    if (maxTokensLimit !== undefined && requested > maxTokensLimit) {
      throw new GatewayError('BAD_USER_INPUT', `maxTokens: must be at most ${maxTokensLimit} (MAX_TOKENS_LIMIT of this server)`);
    }
    return requested;
  }

  private chatWork(
    record: ChatGenerationRecord,
    candidates: Array<ResolvedModel<ChatProvider>>,
    request: ChatRequest,
    newMessages: ChatMessage[],
  ): GenerationWork {
    return (signal, race) =>
      this.withFallback(record, candidates, signal, (candidate, attemptNumber, markContent) =>
        this.runChat(record, candidate, { ...request, model: candidate.model }, attemptNumber, markContent, signal, race, newMessages),
      );
  }

  private imageWork(
    record: ImageGenerationRecord,
    candidates: Array<ResolvedModel<ImageProvider>>,
    request: ImageRequest,
    responseFormat: ImageResponseFormat,
  ): GenerationWork {
    return (signal, race) =>
      this.withFallback(record, candidates, signal, (candidate, attemptNumber, markContent) =>
        this.runImages(record, candidate, { ...request, model: candidate.model }, responseFormat, attemptNumber, markContent, signal, race),
      );
  }

  /**
   * Role `api`: appends event 1, shares the record and queues the job; the record returned to the
   * caller follows the shared stream (its status changes when the terminal event arrives). A queue
   * that refuses the job ends the generation with `SERVICE_UNAVAILABLE`.
   */
  private async enqueue(record: GenerationRecord, started: UnnumberedGenerationEvent, data: GenerationJobData): Promise<void> {
    await this.emit(record, started);
    await this.share(record);
    try {
      await this.options.queue!.enqueue(data);
    } catch (error) {
      (this.options.logger ?? defaultLogger()).error({ err: error, generationId: record.id }, 'cannot queue the generation');
      record.status = 'failed';
      record.finishedAt = new Date();
      record.error = { code: 'SERVICE_UNAVAILABLE', message: 'The generation could not be queued for a worker.', provider: record.provider };
      await this.emit(record, { type: 'generation-failed', error: record.error });
      await this.share(record);
      return;
    }
    const control: FollowControl = { closed: false };
    this.remoteWatches.add(control);
    void (async () => {
      try {
        for await (const event of followEvents(this.followSource, record, record.lastSequence, control)) {
          record.lastSequence = Math.max(record.lastSequence, event.sequence);
          if (record.kind === 'chat' && event.type === 'chat-token-delta') record.text += event.text;
          if (isTerminalEvent(event)) applyTerminalEvent(record, event);
        }
      } catch {
        // The shared record and stream stay the truth; this copy only serves the caller's limits.
      } finally {
        this.remoteWatches.delete(control);
      }
    })();
  }

  /**
   * Role `worker`: runs a queued generation here. Rebuilds the record from the shared one, numbers
   * its events after the last in the shared stream, listens for cancellations, and resolves once
   * the terminal event is out. A generation that already ended (or is unknown) is skipped.
   * @throws Error when this instance is shutting down (the job then fails and the generation ends `WORKER_LOST`).
   */
  async runJob(data: GenerationJobData): Promise<void> {
    if (this.stopped) throw new Error('the worker is shutting down');
    const shared = await this.options.sharedRecords?.load(data.generationId);
    if (!shared || isFinalStatus(shared.status) || this.running.has(shared.id)) return;
    const events = await this.options.eventLog.read(data.generationId, 0);
    if (events.length === 0 || events.some((event) => isTerminalEvent(event))) return;
    const record: GenerationRecord = { ...shared, status: 'running', lastSequence: events.at(-1)!.sequence };
    const registry = this.options.registry;
    let work: GenerationWork;
    if (record.kind === 'chat' && data.kind === 'chat') {
      record.text = events.map((event) => (event.type === 'chat-token-delta' ? event.text : '')).join('');
      const candidates = data.candidates.flatMap(({ providerId, model }) => {
        const provider = registry.get(providerId);
        return provider?.streamChat ? [{ provider: provider as ChatProvider, model }] : [];
      });
      work = candidates.length > 0 ? this.chatWork(record, candidates, data.request, data.newMessages) : missingProviders(data);
    } else if (record.kind === 'image' && data.kind === 'image') {
      const candidates = data.candidates.flatMap(({ providerId, model }) => {
        const provider = registry.get(providerId);
        return provider?.generateImages ? [{ provider: provider as ImageProvider, model }] : [];
      });
      work = candidates.length > 0 ? this.imageWork(record, candidates, data.request, data.responseFormat) : missingProviders(data);
    } else {
      throw new Error(`job ${data.generationId} is a ${data.kind} job but the generation is ${record.kind}`);
    }
    this.records.set(record.id, record);
    this.observe((observer) => observer.generationStarted?.(record, {}));
    const controller = new GenerationAbort();
    const stopListening = this.listenForCancellation(record, controller);
    const finished = this.run(record, controller, work);
    this.running.set(record.id, { record, controller, finished, stopListening });
    await finished;
  }

  /**
   * Ends a queued generation whose job failed — its worker died (BullMQ: stalled) or refused it —
   * with `generation-failed` code `WORKER_LOST`, unless it already ended. The event is appended with
   * the next sequence after the last in the shared stream; when several instances try at once the
   * stream takes only the first (its ids must increase), so only one terminal event is written.
   */
  async markLost(generationId: string, reason: string): Promise<void> {
    if (this.running.has(generationId) || !this.options.sharedRecords) return;
    const record = await this.options.sharedRecords.load(generationId);
    if (!record || isFinalStatus(record.status)) return;
    await this.endLost(record, {
      code: 'WORKER_LOST',
      message: `The worker running this generation was lost (${reason}); it is not restarted, so no output is repeated.`,
      provider: record.provider,
    });
  }

  /**
   * Ends a running generation of another instance that can no longer end it (`shared`: its record as
   * loaded, not final): appends `generation-failed` with `error` after the last event in the shared
   * stream, publishes it, and saves the record FAILED (with the text that streamed). When several
   * instances try at once the stream takes only the first append (its ids must increase), so one
   * terminal event is written. Returns the FAILED record when this call wrote the end, else undefined
   * (the generation already ended, another instance ended it first, or its events are gone).
   * @throws when Redis is unreachable.
   */
  private async endLost(shared: GenerationRecord, error: GenerationErrorShape): Promise<GenerationRecord | undefined> {
    const { eventLog, pubSub } = this.options;
    const events = await eventLog.read(shared.id, 0);
    if (events.length === 0 || events.some((event) => isTerminalEvent(event))) return undefined;
    const event = { type: 'generation-failed', error, generationId: shared.id, sequence: events.at(-1)!.sequence + 1 } as GenerationEvent;
    try {
      await eventLog.append(event);
    } catch {
      return undefined; // another instance appended first
    }
    pubSub.publish('generation:event', shared.id, event);
    const { lease: _lease, ...record } = shared as SharedGenerationRecord;
    const ended = { ...record, status: 'failed', finishedAt: new Date(), error, lastSequence: event.sequence } as GenerationRecord;
    if (ended.kind === 'chat') ended.text = events.map((stored) => (stored.type === 'chat-token-delta' ? stored.text : '')).join('');
    await this.share(ended);
    return ended;
  }

  /**
   * For another instance's generation whose shared record is running under an owner lease: ends it
   * with `INSTANCE_LOST` (see `endLost`) when the lease is gone — its instance stopped renewing it.
   * Returns the record as it is then: FAILED when this call ended it, re-loaded when another
   * instance or its owner ended it meanwhile, else `shared` unchanged (the lease is held, or none applies).
   * @throws when Redis is unreachable.
   */
  private async endIfOwnerLost(shared: SharedGenerationRecord): Promise<SharedGenerationRecord | undefined> {
    const { leases, sharedRecords } = this.options;
    const lease = shared.lease;
    if (!leases || !lease || isFinalStatus(shared.status) || this.running.has(shared.id)) return shared;
    if (await leases.isHeld(shared.id)) return shared;
    const ended = await this.endLost(shared, {
      code: 'INSTANCE_LOST',
      message: `The instance running this generation stopped responding (no lease renewal for ${lease.durationMs} ms); it is not restarted, so no output is repeated.`,
      provider: shared.provider,
    });
    if (ended) {
      (this.options.logger ?? defaultLogger()).warn({ generationId: shared.id, instance: lease.owner }, 'generation ended: the instance running it was lost');
      return ended;
    }
    return sharedRecords!.load(shared.id);
  }

  /** The generation with this id, or undefined when unknown or expired. */
  get(generationId: string): GenerationRecord | undefined {
    return this.records.get(generationId);
  }

  /**
   * Cancels a running generation and waits until its `generation-cancelled` event is out.
   * A generation that already ended is returned unchanged.
   * @throws GatewayError `GENERATION_NOT_FOUND`.
   */
  async cancel(generationId: string, reason = 'cancelled by request'): Promise<GenerationRecord> {
    const running = this.running.get(generationId);
    if (running) {
      running.controller.abort(new GenerationCancellation(reason));
      await running.finished;
      return running.record;
    }
    const record = await this.find(generationId);
    if (!record) throw new GatewayError('GENERATION_NOT_FOUND', `Unknown generation "${generationId}".`);
    if (isFinalStatus(record.status) || this.records.has(generationId)) return record;
    // Running on another instance: ask it to cancel, and wait for the terminal event in the shared log.
    // If no instance answers (the one running it is gone), give up waiting after REMOTE_CANCEL_WAIT_MS.
    const events = this.closable(record, record.lastSequence);
    const giveUp = setTimeout(() => void events.return?.(), REMOTE_CANCEL_WAIT_MS);
    this.options.pubSub.publish('generation:cancel', generationId, reason);
    try {
      for await (const event of events) void event;
    } finally {
      clearTimeout(giveUp);
    }
    return (await this.find(generationId)) ?? record;
  }

  /**
   * The generation with this id: this instance's own record, else (scaled out) the shared one, whose
   * `text` is rebuilt from the shared event log while it runs. Undefined when unknown or expired.
   * A shared record still RUNNING whose instance is gone (its owner lease expired, see
   * generation-leases.ts) is ended here and returned FAILED with code `INSTANCE_LOST`.
   * @throws GatewayError `EVENT_LOG_UNAVAILABLE` when the shared state (Redis) cannot be reached.
   */
  async find(generationId: string): Promise<GenerationRecord | undefined> {
    const local = this.records.get(generationId);
    if (local || !this.options.sharedRecords) return local;
    try {
      const loaded = await this.options.sharedRecords.load(generationId);
      // A running generation whose instance is gone (its owner lease expired) is reported, and ended, as such.
      const found = loaded && (await this.endIfOwnerLost(loaded));
      if (!found) return undefined;
      const { lease: _lease, ...shared } = found;
      if (shared.kind === 'chat' && !isFinalStatus(shared.status)) {
        const events = await this.options.eventLog.read(generationId, 0);
        shared.text = events.map((event) => (event.type === 'chat-token-delta' ? event.text : '')).join('');
        shared.lastSequence = events.at(-1)?.sequence ?? shared.lastSequence;
      }
      return shared;
    } catch (error) {
      throw new GatewayError('EVENT_LOG_UNAVAILABLE', `Generation "${generationId}" cannot be looked up: the shared state is unreachable (${(error as Error).message}).`);
    }
  }

  /**
   * One page of generations, newest first (see generation-listing.ts). Scaled out, every instance's
   * (the shared index in Redis; a chat still running elsewhere has its text rebuilt from the shared
   * log, as `find` does); else the running and retained generations of this instance.
   * @throws GatewayError `BAD_USER_INPUT` for a bad page size or cursor; `EVENT_LOG_UNAVAILABLE` when
   *   the shared state cannot be reached.
   */
  async listGenerations(filter: GenerationFilter): Promise<GenerationPage> {
    const { sharedRecords } = this.options;
    if (!sharedRecords) return listRecords(this.records.values(), filter);
    let page: GenerationPage;
    try {
      page = await sharedRecords.list(filter);
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('EVENT_LOG_UNAVAILABLE', `Generations cannot be listed: the shared state is unreachable (${(error as Error).message}).`);
    }
    const records = await Promise.all(
      page.records.map(async (shared) => {
        const local = this.records.get(shared.id);
        if (local) return local;
        const { lease: _lease, ...record } = shared as SharedGenerationRecord;
        return isFinalStatus(record.status) || record.kind !== 'chat' ? (record as GenerationRecord) : ((await this.find(record.id)) ?? (record as GenerationRecord));
      }),
    );
    return { records, hasNextPage: page.hasNextPage };
  }

  /**
   * The generation's events with `sequence > after`: first those in the log, then live ones,
   * ending after the terminal event. No event is lost or repeated: live events are buffered from
   * before the replay starts, and any gap in sequence is filled from the log. Closing the
   * iterator (`return()`) ends it at once, even while it waits for the next event.
   * @param kind when given, the generation must be of this kind (chat subscriptions only follow chat generations).
   * @throws GatewayError `GENERATION_NOT_FOUND`, or `BAD_USER_INPUT` for a bad `after` or the wrong kind (before the first event);
   *   `EVENT_LOG_UNAVAILABLE` when the shared state cannot be reached. The iterator itself ends with (rejects with)
   *   GatewayError `EVENTS_EXPIRED` when events it must deliver are gone from the log, never skipping them, and with
   *   `EVENT_LOG_UNAVAILABLE` when the log cannot be read or could not store the generation's end.
   */
  async subscribe(generationId: string, after = 0, kind?: GenerationRecord['kind']): Promise<AsyncIterableIterator<GenerationEvent>> {
    const record = await this.find(generationId);
    if (!record) throw new GatewayError('GENERATION_NOT_FOUND', `Unknown generation "${generationId}".`);
    if (kind && record.kind !== kind) {
      throw new GatewayError(
        'BAD_USER_INPUT',
        `Generation "${generationId}" is an ${record.kind === 'chat' ? 'chat' : 'image'} generation; subscribe with ${record.kind === 'chat' ? 'chatCompletionEvents' : 'imageGenerationEvents'}.`,
      );
    }
    if (!Number.isInteger(after) || after < 0) throw new GatewayError('BAD_USER_INPUT', 'after must be a whole number, 0 or more');
    return this.closable(record, after);
  }

  /**
   * Starts a chat generation and streams all its events; closing the stream before the terminal
   * event cancels the generation (reason `subscription closed`).
   * @throws GatewayError as `startChat` does, before anything starts.
   */
  async startChatStream(input: ChatCompletionInput, origin: GenerationOrigin = {}): Promise<AsyncIterableIterator<GenerationEvent>> {
    return this.owned(await this.startChat(input, origin));
  }

  /** Starts an image generation and streams all its events; closing the stream early cancels it. See `startChatStream`. */
  async startImageStream(input: ImageGenerationInput, origin: GenerationOrigin = {}): Promise<AsyncIterableIterator<GenerationEvent>> {
    return this.owned(await this.startImages(input, origin));
  }

  /** All events of a generation whose stream owns it: closing the stream before the end cancels it. */
  private owned(record: GenerationRecord): AsyncIterableIterator<GenerationEvent> {
    return this.closable(record, 0, async () => {
      if (!isFinalStatus(record.status)) await this.cancel(record.id, 'subscription closed');
    });
  }

  /**
   * Wraps `followEvents` so that `return()` wakes a waiting reader and runs `onClose` first, and counts
   * the subscriber as following from its first read until it ends (so `stop()` can wait for it, and
   * observers see subscriptions open and close). A plain object rather than another generator
   * around `followEvents`: an idle subscription holds less, and each event takes one hop fewer.
   */
  private closable(
    record: GenerationRecord,
    after: number,
    onClose?: () => Promise<void>,
  ): AsyncIterableIterator<GenerationEvent> {
    const control: FollowControl = { closed: false };
    const events = followEvents(this.followSource, record, after, control);
    let following: { ended: Promise<void>; end: () => void } | undefined;
    let finished = false;
    const begin = (): void => {
      if (following || finished) return;
      let end!: () => void;
      const ended = new Promise<void>((resolve) => (end = resolve));
      following = { ended, end };
      this.followers.add(ended);
      this.observe((observer) => observer.subscriptionOpened?.());
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (!following) return;
      this.followers.delete(following.ended);
      this.observe((observer) => observer.subscriptionClosed?.());
      following.end();
    };
    const close = async (): Promise<IteratorResult<GenerationEvent>> => {
      if (!control.closed) {
        control.closed = true;
        control.wake?.();
        await onClose?.();
      }
      try {
        return await events.return(undefined);
      } finally {
        finish();
      }
    };
    return {
      // A stream that ends with an error (EVENTS_EXPIRED, EVENT_LOG_UNAVAILABLE) is closed as if its reader had left.
      next: async () => {
        begin();
        try {
          const result = await events.next();
          if (result.done) finish();
          return result;
        } catch (error) {
          finish();
          await close().catch(() => {});
          throw error;
        }
      },
      return: close,
      throw: async (error?: unknown) => {
        await close();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /**
   * Refuses new generations, cancels every running one (reason `server shutting down`), then waits
   * up to `drainMs` (default 2000 ms) for subscribers to receive their terminal events.
   */
  async stop(drainMs = 2_000): Promise<void> {
    this.stopped = true;
    for (const control of this.remoteWatches) {
      control.closed = true;
      control.wake?.();
    }
    await Promise.all([...this.running.keys()].map((id) => this.cancel(id, 'server shutting down')));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.followers),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs).unref())),
    ]);
    clearTimeout(timer);
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.retained.clear();
    // Leases still held (ends the log could not take) expire; other instances then end those generations.
    this.options.leases?.close();
  }

  /**
   * Graceful shutdown: refuses new generations at once (`SERVICE_UNAVAILABLE`), lets the running ones
   * finish on their own for up to `graceMs`, then does what `stop` does (cancels the rest with reason
   * `server shutting down`, waits for subscribers to receive their terminal events).
   */
  async drain(graceMs: number): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.running.values()].map((running) => running.finished.catch(() => {}))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, graceMs)).unref())),
    ]);
    clearTimeout(timer);
    await this.stop();
  }

  /** Tells the observer (metrics, logs); an observer that throws never disturbs a generation. */
  private observe(notify: (observer: GenerationObserver) => void): void {
    const observer = this.options.observer;
    if (!observer) return;
    try {
      notify(observer);
    } catch {
      // ignored on purpose
    }
  }

  /** Number of generations held in memory (running and retained). */
  get size(): number {
    return this.records.size;
  }

  private assertRunning(): void {
    if (this.stopped) throw new GatewayError('SERVICE_UNAVAILABLE', 'The server is shutting down and accepts no new generations; retry on another instance.');
  }

  /**
   * Records the generation, appends its first event, and runs `work` in the background. Resolves
   * one event-loop turn later (a `setImmediate`), after the check phase where undici writes a
   * provider's request on a reused keep-alive connection.
   */
  private async launch(record: GenerationRecord, started: UnnumberedGenerationEvent, work: GenerationWork, origin: GenerationOrigin): Promise<void> {
    this.records.set(record.id, record);
    this.observe((observer) => observer.generationStarted?.(record, origin));
    const controller = new GenerationAbort();
    // Scaled out, the owner lease is sent first, on the connection that then appends event 1: whoever
    // sees the generation sees its lease, and no round trip is added.
    const { leases } = this.options;
    const leased = leases?.hold(record.id);
    // The first event takes sequence 1 now, but the provider starts before it is published, so the
    // upstream request leaves before the subscriber's work for event 1 (time to first token).
    const startedEmitted = this.emit(record, started);
    const stopListening = this.listenForCancellation(record, controller);
    const finished = this.run(record, controller, work);
    this.running.set(record.id, { record, controller, finished, stopListening });
    await startedEmitted;
    await leased;
    await this.share(record, leases && { owner: leases.instanceId, durationMs: leases.leaseMs });
    // The caller (a transport sending event 1, following the generation) goes on after the event
    // loop's I/O and check phases, where the provider's request leaves: undici (7.30) writes a request
    // on a reused keep-alive connection in a setImmediate, not at once (its idle-socket validation,
    // GHSA-35p6-xmwp-9g52; lib/dispatcher/client-h1.js), so without this yield the caller's work ran
    // first. Measured at concurrency 1 against the benchmark's fake upstream: the upstream request
    // left 61 → 35 µs after undici created it (p50), graphql-ws's added time to first token p50
    // 0.58–0.84 → 0.43–0.50 ms in three alternated pairs of runs (REST within noise).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Runs the work and ends the generation with exactly one terminal event: completed, failed or cancelled. */
  private async run(record: GenerationRecord, signal: GenerationAbort, work: GenerationWork): Promise<void> {
    // Each step settles with its promise or with the abort, whichever comes first. (Promise.race against
    // one never-settling "aborted" promise would keep a reaction per step until the generation ends.)
    const pending = new Set<(reason: unknown) => void>();
    const onAbort = () => {
      for (const reject of pending) reject(signal.reason);
      pending.clear();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const { generationTimeoutMs } = this.options;
    const timeout =
      generationTimeoutMs === undefined
        ? undefined
        : setTimeout(() => signal.abort(new GenerationTimeout(`The generation ran longer than ${generationTimeoutMs} ms (GENERATION_TIMEOUT_MS) and was stopped.`)), generationTimeoutMs);
    const race: AbortRace = (promise) =>
      new Promise((resolve, reject) => {
        if (signal.aborted) {
          // The step still settles later (a provider throws the abort reason): observed, so it is not an unhandled rejection.
          promise.catch(() => {});
          reject(signal.reason);
          return;
        }
        pending.add(reject);
        promise.then(
          (value) => {
            pending.delete(reject);
            resolve(value);
          },
          (error: unknown) => {
            pending.delete(reject);
            reject(error);
          },
        );
      });
    try {
      const completed = await work(signal, race);
      if (signal.aborted) throw signal.reason;
      await this.finish(record, 'completed', completed);
    } catch (error) {
      if (signal.reason instanceof GatewayError && signal.reason.code === 'EVENT_LOG_UNAVAILABLE') {
        // Aborted by `emit`: the event log could not store an event (the terminal event follows the last stored one).
        record.error = { code: signal.reason.code, message: signal.reason.message, provider: record.provider };
        await this.finish(record, 'failed', { type: 'generation-failed', error: record.error });
      } else if (signal.reason instanceof GenerationTimeout) {
        record.error = { code: signal.reason.code, message: signal.reason.message, provider: record.provider };
        await this.finish(record, 'failed', { type: 'generation-failed', error: record.error });
      } else if (signal.aborted) {
        const reason = signal.reason instanceof GenerationCancellation ? signal.reason.message : 'cancelled';
        await this.finish(record, 'cancelled', { type: 'generation-cancelled', reason });
      } else {
        const generationError = toGenerationError(error, record.provider, this.options.logger, record.id);
        record.error = generationError;
        await this.finish(record, 'failed', { type: 'generation-failed', error: generationError });
      }
    } finally {
      clearTimeout(timeout);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Tries the candidates in order. A failure before the attempt produced content (a text delta, an
   * image) is reported as `provider-attempt-failed` and the next candidate runs; a failure after
   * content began ends the generation (no switch mid-stream). The outcome of every attempt the circuit
   * breaker let through feeds it (a cancellation only ends a half-open trial); candidates whose circuit is
   * open, or half-open with a trial in flight, are skipped. When several candidates all fail the
   * generation fails with `ALL_PROVIDERS_FAILED` naming each; a single candidate's failure keeps its own code.
   */
  private async withFallback<P extends Provider>(
    record: GenerationRecord,
    candidates: Array<ResolvedModel<P>>,
    signal: GenerationAbort,
    attempt: (candidate: ResolvedModel<P>, attemptNumber: number, markContent: () => void) => Promise<UnnumberedGenerationEvent>,
  ): Promise<UnnumberedGenerationEvent> {
    const breaker = this.options.registry.breaker;
    const failures: Array<{ error: unknown; shape: GenerationErrorShape }> = [];
    for (const [index, candidate] of candidates.entries()) {
      const providerId = candidate.provider.id;
      const last = index === candidates.length - 1;
      let contentStarted = false;
      /** Whether the breaker let this attempt through (only such attempts report their outcome to it). */
      let admitted = false;
      try {
        if (breaker && !(await breaker.tryAcquire(providerId))) {
          const reason = (await breaker.unavailableReason(providerId)) ?? 'circuit half-open: one trial request is in flight; the others skip the provider until it ends';
          throw new ProviderError({ code: 'PROVIDER_UNAVAILABLE', provider: providerId, message: reason });
        }
        admitted = true;
        const completed = await attempt(candidate, index + 1, () => {
          contentStarted = true;
          this.observe((observer) => observer.contentReceived?.(record));
        });
        await breaker?.recordSuccess(providerId);
        return completed;
      } catch (error) {
        if (signal.aborted) {
          // A cancellation says nothing about the provider (not counted); a half-open trial it ends lets the next request try.
          if (admitted) await breaker?.recordFailure(providerId, { code: 'CANCELLED', message: 'cancelled', provider: providerId });
          throw error;
        }
        const shape = toGenerationError(error, providerId, this.options.logger, record.id);
        if (admitted) {
          await breaker?.recordFailure(providerId, { ...shape, ...(error instanceof ProviderError && error.retryAfterMs !== undefined && { retryAfterMs: error.retryAfterMs }) });
        }
        if (contentStarted) throw error;
        failures.push({ error, shape });
        if (last) break;
        await this.emit(record, { type: 'provider-attempt-failed', provider: providerId, error: shape });
      }
    }
    if (failures.length === 1) throw failures[0]!.error;
    throw new AllProvidersFailedError(failures.map((failure) => failure.shape));
  }

  private async runChat(
    record: ChatGenerationRecord,
    candidate: ResolvedModel<ChatProvider>,
    request: ChatRequest,
    attemptNumber: number,
    markContent: () => void,
    signal: GenerationAbort,
    race: AbortRace,
    newMessages: ChatMessage[],
  ): Promise<UnnumberedGenerationEvent> {
    const { provider, model } = candidate;
    if (attemptNumber > 1) {
      record.provider = provider.id;
      record.model = model;
      await this.emit(record, { type: 'chat-completion-started', provider: provider.id, model });
    }
    let finishReason: FinishReason = 'stop';
    let usage: Usage | undefined;
    const deltas = new DeltaCoalescer(this.options.deltaCoalesceMs ?? 0, (text) =>
      this.emit(record, { type: 'chat-token-delta', text }),
    );
    try {
      const streamOptions = signal.streamOptions(this.options.deltaCoalesceMs ?? 0);
      for await (const part of racedParts(provider.streamChat(request, streamOptions), race)) {
        if (part.type === 'text-delta') {
          if (part.text.length === 0) continue;
          markContent();
          const first = record.text.length === 0;
          record.text += part.text;
          await deltas.add(part.text);
          // The first token reaches the subscribers' sockets before the provider is pulled again.
          if (first) await nextEventLoopIteration();
        } else {
          finishReason = part.finishReason;
          usage = part.usage;
        }
      }
    } finally {
      // Text that arrived is delivered before whatever ends the generation (completion, failure, cancellation).
      await deltas.flush();
    }
    record.finishReason = finishReason;
    if (usage) record.usage = usage;
    if (record.conversationId !== undefined) {
      const now = new Date();
      await this.options.conversations.append(record.conversationId, [
        ...newMessages.map((message) => ({ ...message, createdAt: now })),
        { role: 'assistant', content: record.text, provider: provider.id, model, createdAt: now },
      ]);
    }
    return {
      type: 'chat-completion-completed',
      finishReason,
      ...(usage && { usage }),
      text: record.text,
      ...(record.conversationId !== undefined && { conversationId: record.conversationId }),
    };
  }

  /**
   * The messages to send for a turn of a conversation, and the ones that are new to it. A request
   * that repeats the stored history (as OpenAI clients do) is taken as it is; one that sends only the
   * new messages (as gpt4free clients do) gets the history put in front.
   * @throws GatewayError `BAD_USER_INPUT` when the new messages alone exceed the conversation limits.
   */
  private async withHistory(
    conversationId: string | undefined,
    messages: ChatMessage[],
  ): Promise<{ messages: ChatMessage[]; newMessages: ChatMessage[] }> {
    if (conversationId === undefined) return { messages, newMessages: messages };
    const stored = (await this.options.conversations.get(conversationId))?.messages ?? [];
    const history = stored.map(({ role, content }) => ({ role, content }));
    const repeatsHistory =
      history.length > 0 &&
      messages.length > history.length &&
      history.every((message, index) => message.role === messages[index]!.role && message.content === messages[index]!.content);
    const newMessages = repeatsHistory ? messages.slice(history.length) : messages;
    const limits = this.options.conversationLimits;
    if (limits) {
      const characters = newMessages.reduce((sum, message) => sum + message.content.length, 0);
      if (newMessages.length > limits.maxMessages || characters > limits.maxCharacters) {
        throw new GatewayError(
          'BAD_USER_INPUT',
          `messages: too long for a conversation (at most ${limits.maxMessages} messages and ${limits.maxCharacters} characters)`,
        );
      }
    }
    return { messages: [...history, ...newMessages], newMessages };
  }

  /**
   * Collects the provider's images (downloading those given by URL), and only once all are in and
   * the generation is still live, stores them (format `url`) or inlines them (format `b64_json`):
   * a cancelled or failed generation leaves no file behind.
   */
  private async runImages(
    record: ImageGenerationRecord,
    candidate: ResolvedModel<ImageProvider>,
    request: ImageRequest,
    responseFormat: ImageResponseFormat,
    attemptNumber: number,
    markContent: () => void,
    signal: GenerationAbort,
    race: AbortRace,
  ): Promise<UnnumberedGenerationEvent> {
    const { imageStore } = this.options;
    const { provider, model } = candidate;
    if (attemptNumber > 1) {
      record.provider = provider.id;
      record.model = model;
      await this.emit(record, { type: 'image-generation-started', provider: provider.id, model });
    }
    const collected: Array<{ image: ProviderImage; checked: CheckedImage }> = [];
    for await (const part of racedParts(provider.generateImages(request, signal.streamOptions()), race)) {
      if (part.type === 'progress') {
        await this.emit(record, {
          type: 'image-generation-progress',
          ...(part.message !== undefined && { message: part.message }),
          ...(part.progress !== undefined && { progress: part.progress }),
          ...(part.queuePosition !== undefined && { queuePosition: part.queuePosition }),
        });
      } else if (part.type === 'image') {
        markContent();
        const { image } = part;
        let checked: CheckedImage;
        if (image.data) checked = await imageStore.check(image.data, `the image from ${provider.id}`);
        else if (image.url) checked = await race(imageStore.download(image.url, signal.toAbortSignal()));
        else throw new ProviderError({ code: 'UPSTREAM_BAD_RESPONSE', provider: provider.id, message: 'an image came with neither bytes nor a URL' });
        collected.push({ image, checked });
      }
    }
    if (collected.length === 0) {
      throw new ProviderError({ code: 'UPSTREAM_BAD_RESPONSE', provider: provider.id, message: 'the provider finished without an image' });
    }
    signal.throwIfAborted();
    const images = await race(
      Promise.all(
        collected.map(async ({ image, checked }): Promise<GeneratedImage> => {
          const described: GeneratedImage = {
            mimeType: checked.mimeType,
            ...(image.width !== undefined && { width: image.width }),
            ...(image.height !== undefined && { height: image.height }),
            ...(image.seed !== undefined && { seed: image.seed }),
            ...(image.revisedPrompt !== undefined && { revisedPrompt: image.revisedPrompt }),
            ...(image.url !== undefined && { sourceUrl: image.url }),
          };
          if (responseFormat === 'b64_json') return { ...described, b64Json: Buffer.from(checked.bytes).toString('base64') };
          return { ...described, url: imageStore.publicUrl(await imageStore.save(checked)) };
        }),
      ),
    );
    record.images = images;
    return { type: 'image-generation-completed', images };
  }

  private async finish(record: GenerationRecord, status: GenerationStatus, event: UnnumberedGenerationEvent): Promise<void> {
    record.status = status;
    record.finishedAt = new Date();
    try {
      await this.emit(record, event);
      await this.share(record);
    } finally {
      this.running.get(record.id)?.stopListening();
      this.running.delete(record.id);
      // The lease goes once the end is stored; an end the log could not take keeps it until written (storeEndLater).
      if (!this.unstoredEnds.has(record.id)) void this.options.leases?.release(record.id);
      this.scheduleExpiry(record.id);
      this.observe((observer) => observer.generationFinished?.(record));
    }
  }

  /** Saves the record where other instances see it (scaled out), with its owner lease if any; a failure is logged, not fatal. */
  private async share(record: GenerationRecord, lease?: SharedGenerationRecord['lease']): Promise<void> {
    try {
      await this.options.sharedRecords?.save(record, lease);
    } catch (error) {
      (this.options.logger ?? defaultLogger()).error({ err: error, generationId: record.id }, 'cannot share the generation');
    }
  }

  /** Listens for cancellation requests of this generation from other instances. */
  private listenForCancellation(record: GenerationRecord, controller: GenerationAbort): () => void {
    if (!this.options.sharedRecords) return () => {};
    const requests = this.options.pubSub.subscribe('generation:cancel', record.id)[Symbol.asyncIterator]();
    void (async () => {
      for (let request = await requests.next(); !request.done; request = await requests.next()) {
        controller.abort(new GenerationCancellation(request.value));
      }
    })();
    return () => void requests.return?.();
  }

  /** Forgets the generation after the retention time, or earlier when more than `maxRetained` finished ones are kept (oldest first). */
  private scheduleExpiry(generationId: string): void {
    this.retained.set(generationId, performance.now() + this.options.retentionMs);
    const maxRetained = this.options.maxRetained ?? Number.POSITIVE_INFINITY;
    this.forgetOldestWhile(() => this.retained.size > maxRetained);
    if (this.expiryTimer === undefined) this.startExpiryTimer();
  }

  /** Forgets kept generations, oldest first, as long as `due(expiresAt)` holds for the oldest left. */
  private forgetOldestWhile(due: (expiresAt: number) => boolean): void {
    for (const [generationId, expiresAt] of this.retained) {
      if (!due(expiresAt)) break;
      this.forget(generationId);
    }
  }

  /** Sets the timer for the first kept generation's expiry (none when nothing is kept). */
  private startExpiryTimer(): void {
    const first = this.retained.values().next();
    if (first.done) return;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      const now = performance.now();
      this.forgetOldestWhile((expiresAt) => expiresAt <= now);
      this.startExpiryTimer();
    }, Math.max(0, first.value - performance.now()));
    this.expiryTimer.unref();
  }

  private forget(generationId: string): void {
    this.retained.delete(generationId);
    this.records.delete(generationId);
    void this.options.eventLog.delete(generationId);
  }

  /**
   * Numbers the event, appends it to the log and publishes it. Appends of one generation run one
   * after another, in sequence order, whatever the log's latency.
   *
   * An event the log cannot take (Redis unreachable, or it refused it) breaks the generation's log
   * from there: the emission rejects with GatewayError `EVENT_LOG_UNAVAILABLE`, the running
   * generation is aborted with that error (it ends FAILED with that code), later events are refused
   * the same way, and the terminal event takes the sequence after the last one stored, so the log
   * never has a hole. A terminal event the log cannot take either is written once it is back (see
   * `storeEndLater`); its emission resolves. Nothing is published that the log did not take.
   */
  private emit(record: GenerationRecord, event: UnnumberedGenerationEvent): Promise<void> {
    let state = this.emissions.get(record);
    if (!state) {
      state = { chain: Promise.resolve(), stored: record.lastSequence };
      this.emissions.set(record, state);
    }
    record.lastSequence += 1;
    // Object.assign, not an object spread: on Node 20's V8 every `{ ...event, … }` got a hidden class of its
    // own (measured), so each event kept in the log cost a map and made every reader of events megamorphic.
    const numbered = Object.assign({}, event, { generationId: record.id, sequence: record.lastSequence }) as GenerationEvent;
    const current = state;
    const emission = state.chain.catch(() => {}).then(() => this.store(record, current, numbered));
    state.chain = emission;
    return emission;
  }

  /** Appends and publishes one numbered event of `emit`, or handles the log's failure (see `emit`). */
  private async store(record: GenerationRecord, state: EmissionState, numbered: GenerationEvent): Promise<void> {
    const terminal = isTerminalEvent(numbered);
    let event = numbered;
    if (state.failure) {
      if (!terminal) throw state.failure;
      if (state.stored === 0) return; // nothing of it reached the log, so no one can be following it
      event = Object.assign({}, numbered, { sequence: state.stored + 1 });
      record.lastSequence = event.sequence;
    }
    try {
      await this.options.eventLog.append(event);
    } catch (error) {
      const reason = (error as Error).message;
      const logger = this.options.logger ?? defaultLogger();
      if (terminal) {
        const ending = new GatewayError(
          'EVENT_LOG_UNAVAILABLE',
          `The event log could not store the last event (${event.sequence}) of generation "${record.id}" (${reason}); it is written when the log is back: resubscribe then with after: ${state.stored}.`,
        );
        if (state.stored > 0) this.storeEndLater(record, state, event, ending);
        logger.error({ err: error, generationId: record.id, sequence: event.sequence }, 'cannot store the terminal event of a generation');
        return;
      }
      const failure =
        state.failure ??
        new GatewayError('EVENT_LOG_UNAVAILABLE', `The event log could not store event ${event.sequence} of generation "${record.id}" (${reason}), so the generation was stopped.`);
      if (!state.failure) {
        state.failure = failure;
        logger.error({ err: error, generationId: record.id, sequence: event.sequence }, 'cannot store an event: the generation is stopped');
        this.running.get(record.id)?.controller.abort(failure);
      }
      throw failure;
    }
    state.stored = event.sequence;
    this.options.pubSub.publish('generation:event', record.id, event);
  }

  /**
   * Keeps a terminal event the log could not take. Subscribers of the generation on this instance
   * that have every stored event are woken and end with `error` (they cannot be given an event the
   * log does not hold). When the log is back (`EventLog.whenAvailable`) the event is appended after
   * the last event the log holds — normally `state.stored`, later when an append whose answer was
   * lost did go through — published, and the shared record saved, so the generation ends for every
   * instance. Given up after a few failed attempts, or when the service stops or forgets the generation.
   */
  private storeEndLater(record: GenerationRecord, state: EmissionState, event: GenerationEvent, error: GatewayError): void {
    const { eventLog, pubSub } = this.options;
    this.unstoredEnds.set(record.id, { event, error });
    for (const control of this.followControls.get(record.id) ?? []) control.wake?.();
    const whenAvailable = eventLog.whenAvailable?.bind(eventLog);
    if (!whenAvailable) {
      void this.options.leases?.release(record.id);
      return;
    }
    void (async () => {
      for (let attempt = 1; attempt <= 5; attempt += 1) {
        await whenAvailable();
        if (this.stopped || this.records.get(record.id) !== record) break;
        try {
          const later = await eventLog.read(record.id, state.stored);
          const storedEnd = later.find((stored) => isTerminalEvent(stored));
          if (storedEnd) {
            // Its own append went through after all, or another instance ended the generation (INSTANCE_LOST after a
            // lapsed lease): the record says what the stream says.
            applyTerminalEvent(record, storedEnd);
            record.lastSequence = storedEnd.sequence;
          } else {
            const end = Object.assign({}, event, { sequence: (later.at(-1)?.sequence ?? state.stored) + 1 });
            await eventLog.append(end);
            state.stored = end.sequence;
            record.lastSequence = end.sequence;
            pubSub.publish('generation:event', record.id, end);
          }
          this.unstoredEnds.delete(record.id);
          await this.share(record);
          return;
        } catch (retryError) {
          (this.options.logger ?? defaultLogger()).warn({ err: retryError, generationId: record.id, attempt }, 'cannot store the terminal event yet');
          continue;
        }
      }
      // Stopped or forgotten (kept after the last failed attempt, so subscribers still get `error`).
      if (this.stopped || this.records.get(record.id) !== record) this.unstoredEnds.delete(record.id);
    })()
      // Either way the lease then goes: an end never written lets another instance end the generation (INSTANCE_LOST).
      .finally(() => void this.options.leases?.release(record.id));
  }

  /**
   * For a generation another instance runs: the last sequence of its shared record once that record
   * is final, else undefined (still running, unknown, or this instance's own generation). A record
   * whose owner lease is gone is first ended with `INSTANCE_LOST` (see `endIfOwnerLost`).
   * @throws GatewayError `EVENT_LOG_UNAVAILABLE` when the shared records cannot be read.
   */
  private async sharedEnd(record: GenerationRecord): Promise<number | undefined> {
    const { sharedRecords } = this.options;
    if (!sharedRecords || this.records.get(record.id) === record || isFinalStatus(record.status)) return undefined;
    let shared: GenerationRecord | undefined;
    try {
      // A generation whose instance is gone (its owner lease expired) is ended here: nobody else would.
      const loaded = await sharedRecords.load(record.id);
      shared = loaded && (await this.endIfOwnerLost(loaded));
    } catch (error) {
      throw new GatewayError('EVENT_LOG_UNAVAILABLE', `Generation "${record.id}" cannot be looked up: the shared state is unreachable (${(error as Error).message}).`);
    }
    return shared && isFinalStatus(shared.status) ? shared.lastSequence : undefined;
  }

  /** The generation's last sequence once its pending appends here have settled (a final record's is then its terminal event's). */
  private async settledLastSequence(record: GenerationRecord): Promise<number> {
    await this.emissions.get(record)?.chain.catch(() => {});
    return record.lastSequence;
  }
}

/**
 * Iterates a provider's stream, racing every step against the generation's abort; closes the
 * provider's generator (which aborts its upstream request) when the loop ends early. The close is
 * not awaited: a provider busy in a read only returns once that read settles.
 */
async function* racedParts<Part>(parts: AsyncIterable<Part>, race: AbortRace): AsyncGenerator<Part> {
  const iterator = parts[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const result = await race(iterator.next());
      if (result.done) {
        done = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (!done) iterator.return?.()?.catch(() => {});
  }
}

/** Work for a job none of whose providers this worker has: fails with `PROVIDER_NOT_FOUND`. */
function missingProviders(data: GenerationJobData): GenerationWork {
  const providerId = data.candidates[0]?.providerId ?? '?';
  return async () => {
    throw new GatewayError('PROVIDER_NOT_FOUND', `This worker has no ${data.kind} provider "${providerId}".`);
  };
}

/** Copies a terminal event's outcome onto a record followed from another instance. */
function applyTerminalEvent(record: GenerationRecord, event: GenerationEvent): void {
  record.finishedAt = new Date();
  if (event.type === 'generation-failed') {
    record.status = 'failed';
    record.error = event.error;
  } else if (event.type === 'generation-cancelled') {
    record.status = 'cancelled';
  } else {
    record.status = 'completed';
    if (event.type === 'chat-completion-completed' && record.kind === 'chat') {
      record.text = event.text;
      record.finishReason = event.finishReason;
      if (event.usage) record.usage = event.usage;
    } else if (event.type === 'image-generation-completed' && record.kind === 'image') {
      record.images = event.images;
    }
  }
}

/** Maps any failure of a provider to the client-facing error shape; unexpected errors keep no internals. */
function toGenerationError(error: unknown, providerId: string, logger: Logger = defaultLogger(), generationId?: string): GenerationErrorShape {
  if (error instanceof ProviderError) {
    return { code: error.code, message: error.message, provider: error.provider };
  }
  if (error instanceof ImageStoreError || error instanceof GatewayError) {
    return { code: error.code, message: error.message, provider: providerId };
  }
  if (error instanceof AllProvidersFailedError) return { code: error.code, message: error.message };
  logger.error({ err: error, provider: providerId, generationId }, `provider ${providerId} failed unexpectedly`);
  return { code: 'PROVIDER_ERROR', message: `Provider ${providerId} failed unexpectedly.`, provider: providerId };
}
