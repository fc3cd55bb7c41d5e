/**
 * The generation service: the one place transports (GraphQL resolvers, REST routes) start, cancel,
 * look up, list and follow generations. It keeps a map of runs (`generation-run.ts`: each numbers,
 * stores and publishes its own events and ends itself), the records it retains
 * (`generation-retention.ts`) and its subscribers (`generation-subscriptions.ts`); the work of a run
 * is `chat-run.ts` or `image-run.ts`, with fallback between providers (`provider-fallback.ts`).
 * Scaled out, the same calls go through one seam (`scale-out.ts`) that a single instance does not install.
 */
import type { GenerationObserver } from './generation-observer.js';
import { traceRequestOf, UNTRACED, type GenerationTraceRequest } from './generation-tracer.js';
import { defaultLogger, type Logger } from '../operations/logger.js';
import { chatWork, type ChatRunOptions } from './chat-run.js';
import type { GenerationAccess } from './generation-access.js';
import { GatewayError } from './gateway-error.js';
import { isTerminalEvent, type GenerationEvent, type UnnumberedGenerationEvent } from './generation-events.js';
import type { ChatCompletionInput, GenerationOrigin, ImageGenerationInput } from './generation-inputs.js';
import { jobWork, type GenerationJobData } from './generation-job.js';
import { findStoredGeneration, withStoredGenerations } from './generation-history.js';
import { listRecords, type GenerationFilter, type GenerationPage } from './generation-listing.js';
import { applyTerminalEvent, isFinalStatus, type ChatGenerationRecord, type GenerationRecord, type ImageGenerationRecord } from './generation-records.js';
import { prepareChat, prepareImages, type PreparedChat, type PreparedImages } from './generation-requests.js';
import { GenerationRetention } from './generation-retention.js';
import { GenerationRun, type GenerationRunContext, type GenerationWork, type UnstoredEnd } from './generation-run.js';
import type { GenerationServiceOptions } from './generation-service-options.js';
import { GenerationSubscriptions, subscribable } from './generation-subscriptions.js';
import { imageWork, type ImageRunOptions } from './image-run.js';
import type { ScaleOut } from './scale-out.js';

export { AllProvidersFailedError, GenerationCancellation, GenerationTimeout } from './generation-errors.js';
export type { ChatCompletionInput, GenerationOrigin, ImageGenerationInput } from './generation-inputs.js';
export type { ChatGenerationRecord, GenerationRecord, GenerationStatus, ImageGenerationRecord } from './generation-records.js';
export type { GenerationServiceOptions } from './generation-service-options.js';

/** How long a cancellation of a generation running on another instance waits for its terminal event, ms. */
const REMOTE_CANCEL_WAIT_MS = 10_000;

/** A generation just started: its record, and event 1 as stored when it runs on this instance. */
interface Begun<Record extends GenerationRecord> {
  record: Record;
  first: GenerationEvent | undefined;
}

/** Starts, cancels, looks up, lists and streams generations. */
export class GenerationService implements GenerationAccess {
  /** The generations this instance keeps: running ones and retained finished ones. */
  private readonly records = new Map<string, GenerationRecord>();
  private readonly running = new Map<string, GenerationRun>();
  /** Terminal events the event log could not take (Redis away), by generation id, until they are written. */
  private readonly unstoredEnds = new Map<string, UnstoredEnd>();
  private readonly retention: GenerationRetention;
  private readonly subscriptions: GenerationSubscriptions;
  private readonly runContext: GenerationRunContext;
  private readonly workOptions: ChatRunOptions & ImageRunOptions;
  private readonly logger: Logger;
  private stopped = false;

  constructor(private readonly options: GenerationServiceOptions) {
    const { eventLog, pubSub, scaleOut } = options;
    this.logger = options.logger ?? defaultLogger();
    this.retention = new GenerationRetention({
      retentionMs: options.retentionMs,
      ...(options.maxRetained !== undefined && { maxRetained: options.maxRetained }),
      forget: (generationId) => {
        this.records.delete(generationId);
        void eventLog.delete(generationId);
      },
    });
    this.subscriptions = new GenerationSubscriptions({
      eventLog,
      pubSub,
      ...(scaleOut?.recheckIntervalMs !== undefined && { recheckIntervalMs: scaleOut.recheckIntervalMs }),
      sharedEnd: async (record) =>
        !scaleOut || this.records.get(record.id) === record || isFinalStatus(record.status) ? undefined : scaleOut.sharedEnd(record),
      settledLastSequence: (record) => this.running.get(record.id)?.settledLastSequence() ?? Promise.resolve(record.lastSequence),
      unstoredEnd: (generationId) => this.unstoredEnds.get(generationId)?.error,
      runsHere: (generationId) => this.running.has(generationId),
      onFollowing: (following) => this.observe((observer) => (following ? observer.subscriptionOpened?.() : observer.subscriptionClosed?.())),
    });
    this.runContext = {
      eventLog,
      pubSub,
      logger: this.logger,
      ...(options.generationTimeoutMs !== undefined && { timeoutMs: options.generationTimeoutMs }),
      unstoredEnds: this.unstoredEnds,
      wakeFollowers: (generationId) => this.subscriptions.wake(generationId),
      keeps: (record) => !this.stopped && this.records.get(record.id) === record,
      share: (record) => scaleOut?.share(record) ?? Promise.resolve(),
      releaseLease: (generationId) => scaleOut?.releaseLease(generationId),
      onEnded: (run) => this.ended(run),
    };
    this.workOptions = {
      ...(options.registry.breaker && { breaker: options.registry.breaker }),
      logger: this.logger,
      onContent: (record) => this.observe((observer) => observer.contentReceived?.(record)),
      deltaCoalesceMs: options.deltaCoalesceMs ?? 0,
      conversations: options.conversations,
      imageStore: options.imageStore,
    };
  }

  /**
   * Validates a chat request, resolves provider and model, and starts the generation in the background.
   * Returns with the RUNNING record one event-loop turn later (after the turn's check phase, where
   * undici writes a request on a reused connection; see `launch`); event 1
   * (`chat-completion-started`) is already in the log.
   * `origin` goes to the observers; its `callerId` becomes the record's owner, its `restriction` limits the candidates.
   * @throws GatewayError `BAD_USER_INPUT`, `MODEL_NOT_FOUND`, `PROVIDER_NOT_FOUND`, or `FORBIDDEN` (no candidate is in
   *   `origin.restriction`); nothing is started then.
   */
  async startChat(input: ChatCompletionInput, origin: GenerationOrigin = {}): Promise<ChatGenerationRecord> {
    return (await this.beginChat(input, origin)).record;
  }

  /** `startChat`, with event 1 as stored (undefined when the generation was queued for a worker). */
  private async beginChat(input: ChatCompletionInput, origin: GenerationOrigin): Promise<Begun<ChatGenerationRecord>> {
    this.assertRunning();
    const { options } = this;
    const chat = await prepareChat(input, origin, {
      registry: options.registry,
      conversations: options.conversations,
      ...(options.conversationLimits && { conversationLimits: options.conversationLimits }),
      ...(options.tokenLimits && { tokenLimits: options.tokenLimits }),
    });
    const { candidates, request, newMessages } = chat;
    const first = await this.begin(
      chat,
      origin,
      this.options.tracer ? traceRequestOf(input.model, request) : UNTRACED,
      (generationId, pairs) => ({ generationId, kind: 'chat', candidates: pairs, request, newMessages }),
      () => chatWork(candidates, request, newMessages, this.workOptions),
    );
    return { record: chat.record, first };
  }

  /**
   * Validates an image request, resolves provider and model, and starts the generation in the
   * background; returns as `startChat` does, with event 1 (`image-generation-started`) in the log.
   * @throws GatewayError `BAD_USER_INPUT`, `MODEL_NOT_FOUND`, `PROVIDER_NOT_FOUND`, or `FORBIDDEN` (no candidate is in
   *   `origin.restriction`); nothing is started then.
   */
  async startImages(input: ImageGenerationInput, origin: GenerationOrigin = {}): Promise<ImageGenerationRecord> {
    return (await this.beginImages(input, origin)).record;
  }

  /** `startImages`, with event 1 as stored (undefined when the generation was queued for a worker). */
  private async beginImages(input: ImageGenerationInput, origin: GenerationOrigin): Promise<Begun<ImageGenerationRecord>> {
    this.assertRunning();
    const images = await prepareImages(input, origin, this.options.registry);
    const { candidates, request, responseFormat } = images;
    const first = await this.begin(
      images,
      origin,
      this.options.tracer ? traceRequestOf(input.model) : UNTRACED,
      (generationId, pairs) => ({ generationId, kind: 'image', candidates: pairs, request, responseFormat }),
      () => imageWork(candidates, request, responseFormat, this.workOptions),
    );
    return { record: images.record, first };
  }

  /**
   * Role `worker`: runs a queued generation here, numbering its events after the last in the shared
   * stream, and resolves once its terminal event is out. A generation that already ended (or is unknown) is skipped.
   * @throws Error when this instance is shutting down (the job then fails and the generation ends `WORKER_LOST`).
   */
  async runJob(data: GenerationJobData): Promise<void> {
    if (this.stopped) throw new Error('the worker is shutting down');
    const { scaleOut, registry } = this.options;
    if (!scaleOut || this.running.has(data.generationId)) return;
    const job = await scaleOut.loadJob(data);
    if (!job || this.running.has(job.record.id)) return;
    const { record } = job;
    const work = jobWork(data, record, registry, this.workOptions);
    const { run } = this.enrol(record, {}, data.trace, { lease: false });
    await run.start(work);
  }

  /**
   * Ends a queued generation whose job failed — its worker died (BullMQ: stalled) or refused it —
   * with `generation-failed` code `WORKER_LOST`, unless it already ended (see `ScaleOut.markLost`).
   */
  async markLost(generationId: string, reason: string): Promise<void> {
    if (this.running.has(generationId) || !this.options.scaleOut) return;
    await this.options.scaleOut.markLost(generationId, reason);
  }

  /** The generation with this id that this instance keeps, or undefined. */
  get(generationId: string): GenerationRecord | undefined {
    return this.records.get(generationId);
  }

  /**
   * The generation with this id: this instance's own record, else (scaled out) the shared one (see
   * `ScaleOut.find`), else the stored one past its retention (with a history: its result, no
   * events). Undefined when unknown, or expired and not stored. `options.text: false`: a chat running
   * on another instance comes without its text rebuilt from the shared log (see `ScaleOut.find`).
   * @throws GatewayError `EVENT_LOG_UNAVAILABLE` when the shared state (Redis) cannot be reached;
   *   `DATABASE_UNAVAILABLE` when the history cannot be read.
   */
  async find(generationId: string, options?: { text?: boolean }): Promise<GenerationRecord | undefined> {
    const { scaleOut, history } = this.options;
    const held = this.records.get(generationId) ?? (await scaleOut?.find(generationId, options));
    return held ?? (history && (await findStoredGeneration(history, generationId)));
  }

  /**
   * One page of generations, newest first (see generation-listing.ts). Scaled out, every instance's
   * (this instance's own records stand for their shared copies, and a chat still running elsewhere
   * has its text rebuilt, as `find` does); else the running and retained generations of this
   * instance. With a history, the stored ones past their retention too (see `withStoredGenerations`).
   * @throws GatewayError `BAD_USER_INPUT` for a bad page size or cursor; `EVENT_LOG_UNAVAILABLE` when
   *   the shared state cannot be reached; `DATABASE_UNAVAILABLE` when the history cannot be read.
   */
  async listGenerations(filter: GenerationFilter): Promise<GenerationPage> {
    const live = await this.listHeldGenerations(filter);
    const { history } = this.options;
    return history ? withStoredGenerations(history, filter, live) : live;
  }

  /** One page of the generations held in memory: this instance's, or scaled out every instance's. */
  private async listHeldGenerations(filter: GenerationFilter): Promise<GenerationPage> {
    const { scaleOut } = this.options;
    if (!scaleOut) return listRecords(this.records.values(), filter);
    const page = await scaleOut.list(filter);
    const records = await Promise.all(
      page.records.map(async (shared) => {
        const local = this.records.get(shared.id);
        if (local) return local;
        return isFinalStatus(shared.status) || shared.kind !== 'chat' ? shared : ((await this.find(shared.id)) ?? shared);
      }),
    );
    return { records, hasNextPage: page.hasNextPage };
  }

  /**
   * Cancels a running generation and waits until its `generation-cancelled` event is out. A
   * generation that already ended is returned unchanged. Scaled out, one running on another
   * instance is asked to cancel, and its terminal event is waited for (at most
   * {@link REMOTE_CANCEL_WAIT_MS}: the instance running it may be gone).
   * @throws GatewayError `GENERATION_NOT_FOUND`.
   */
  async cancel(generationId: string, reason = 'cancelled by request'): Promise<GenerationRecord> {
    const run = this.running.get(generationId);
    if (run) {
      await run.cancel(reason);
      return run.record;
    }
    const record = await this.find(generationId);
    if (!record) throw new GatewayError('GENERATION_NOT_FOUND', `Unknown generation "${generationId}".`);
    const { scaleOut } = this.options;
    if (isFinalStatus(record.status) || this.records.has(generationId) || !scaleOut) return record;
    const events = this.subscriptions.follow(record, record.lastSequence);
    const giveUp = setTimeout(() => void events.return?.(), REMOTE_CANCEL_WAIT_MS);
    scaleOut.requestCancel(generationId, reason);
    let last: GenerationEvent | undefined;
    try {
      for await (const event of events) last = event;
    } finally {
      clearTimeout(giveUp);
    }
    const found = (await this.find(generationId)) ?? record;
    // The instance that ran it saves the final record just after publishing its terminal event: the
    // record read here may be a moment older than the event heard.
    if (last && isTerminalEvent(last) && !isFinalStatus(found.status)) {
      applyTerminalEvent(found, last);
      found.lastSequence = last.sequence;
    }
    return found;
  }

  /**
   * The generation's events with `sequence > after`: first those in the log, then live ones,
   * ending after the terminal event (see `followEvents`). Closing the iterator (`return()`) ends it
   * at once, even while it waits for the next event.
   * @param kind when given, the generation must be of this kind (chat subscriptions only follow chat generations).
   * @throws GatewayError `GENERATION_NOT_FOUND`, or `BAD_USER_INPUT` for a bad `after` or the wrong kind (before the first event);
   *   `EVENT_LOG_UNAVAILABLE` when the shared state cannot be reached. The iterator itself ends with (rejects with)
   *   GatewayError `EVENTS_EXPIRED` when events it must deliver are gone from the log, never skipping them, and with
   *   `EVENT_LOG_UNAVAILABLE` when the log cannot be read or could not store the generation's end.
   */
  async subscribe(generationId: string, after = 0, kind?: GenerationRecord['kind']): Promise<AsyncIterableIterator<GenerationEvent>> {
    // The follower reads the events itself: a running chat's text need not be rebuilt first.
    const lookup = async () => subscribable(await this.find(generationId, { text: false }), generationId, after, kind);
    // Another instance's generation: listening and the first read go out with the lookup (one round trip, not two).
    if (this.options.scaleOut && !this.records.has(generationId)) return this.subscriptions.followAhead(generationId, after, lookup);
    return this.subscriptions.follow(await lookup(), after);
  }

  /**
   * Starts a chat generation and streams all its events; closing the stream before the terminal
   * event cancels the generation (reason `subscription closed`).
   * @throws GatewayError as `startChat` does, before anything starts.
   */
  async startChatStream(input: ChatCompletionInput, origin: GenerationOrigin = {}): Promise<AsyncIterableIterator<GenerationEvent>> {
    const { record, first } = await this.beginChat(input, origin);
    return this.owned(record, first);
  }

  /** Starts an image generation and streams all its events; closing the stream early cancels it. See `startChatStream`. */
  async startImageStream(input: ImageGenerationInput, origin: GenerationOrigin = {}): Promise<AsyncIterableIterator<GenerationEvent>> {
    const { record, first } = await this.beginImages(input, origin);
    return this.owned(record, first);
  }

  /**
   * Refuses new generations, cancels every running one (reason `server shutting down`), then waits
   * up to `drainMs` (default 2000 ms) for subscribers to receive their terminal events.
   */
  async stop(drainMs = 2_000): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.running.keys()].map((id) => this.cancel(id, 'server shutting down')));
    await this.subscriptions.settle(drainMs);
    this.retention.clear();
    this.options.scaleOut?.close();
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
      Promise.all([...this.running.values()].map((run) => run.finished.catch(() => {}))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, graceMs)).unref())),
    ]);
    clearTimeout(timer);
    await this.stop();
  }

  /** Number of generations held in memory (running and retained). */
  get size(): number {
    return this.records.size;
  }

  private assertRunning(): void {
    if (this.stopped) throw new GatewayError('SERVICE_UNAVAILABLE', 'The server is shutting down and accepts no new generations; retry on another instance.');
  }

  /**
   * All events of a generation whose stream owns it: closing the stream before the end cancels it.
   * @param first event 1 as stored, when the generation runs here (the follower need not read it back).
   */
  private owned(record: GenerationRecord, first: GenerationEvent | undefined): AsyncIterableIterator<GenerationEvent> {
    return this.subscriptions.follow(
      record,
      0,
      async () => {
        if (!isFinalStatus(record.status)) await this.cancel(record.id, 'subscription closed');
      },
      first,
    );
  }

  /**
   * Starts a prepared generation: queued for a worker (role `api`, see `ScaleOut.enqueue`) unless it
   * carries the caller's own provider key, else run here (see `launch`).
   * @param job the queued job, from the generation id and the candidates as ids.
   * @returns event 1 as stored when the generation runs here; undefined when it was queued.
   */
  private async begin(
    prepared: PreparedChat | PreparedImages,
    origin: GenerationOrigin,
    traced: GenerationTraceRequest,
    job: (generationId: string, candidates: GenerationJobData['candidates']) => GenerationJobData,
    work: () => GenerationWork,
  ): Promise<GenerationEvent | undefined> {
    const { record, started, candidates } = prepared;
    const { scaleOut, tracer } = this.options;
    if (scaleOut?.enqueue && !prepared.hasOwnKey) {
      const data = job(record.id, candidates.map(({ provider, model }) => ({ providerId: provider.id, model })));
      if (tracer && origin.trace) data.trace = { carrier: origin.trace, request: traced };
      await scaleOut.enqueue(new GenerationRun(record, this.runContext), started, data, this.subscriptions.source);
      return undefined;
    }
    return this.launch(record, started, work(), origin, traced);
  }

  /**
   * Records the generation, appends its first event, and runs `work` in the background. Resolves
   * one event-loop turn later (a `setImmediate`), after the check phase where undici writes a
   * provider's request on a reused keep-alive connection, with event 1 as stored.
   */
  private async launch(
    record: GenerationRecord,
    started: UnnumberedGenerationEvent,
    work: GenerationWork,
    origin: GenerationOrigin,
    traced: GenerationTraceRequest,
  ): Promise<GenerationEvent | undefined> {
    // Scaled out, the owner lease is taken here; its key goes out with the shared record's save below.
    const { run, adopted } = this.enrol(record, origin, { request: traced, ...(origin.trace && { carrier: origin.trace }) }, { lease: true });
    // The first event takes sequence 1 now, but the provider starts before it is published, so the
    // upstream request leaves before the subscriber's work for event 1 (time to first token).
    const startedEmitted = run.emit(started);
    // Scaled out, the shared record (with the lease's key) goes out now too, ahead of event 1's append
    // on the same connection: the two are pipelined, one round trip before the caller hears back.
    const shared = this.options.scaleOut?.share(record, adopted?.lease);
    void run.start(work);
    const first = await startedEmitted;
    await shared;
    // The caller (a transport sending event 1, following the generation) goes on after the event
    // loop's I/O and check phases, where the provider's request leaves: undici writes a request on
    // a reused keep-alive connection in a setImmediate, not at once (its idle-socket validation,
    // GHSA-35p6-xmwp-9g52; lib/dispatcher/client-h1.js), so without this yield the caller's work ran first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return first;
  }

  /**
   * A generation starts running here (launched, or a worker's job): its record is kept, the observer
   * told, its trace begun (tracing on), the run adopted (scaled out; `ScaleOut.adopt`) and returned.
   */
  private enrol(
    record: GenerationRecord,
    origin: GenerationOrigin,
    trace: Partial<GenerationJobData['trace']> | undefined,
    adoption: { lease: boolean },
  ): { run: GenerationRun; adopted: ReturnType<ScaleOut['adopt']> | undefined } {
    this.records.set(record.id, record);
    this.observe((observer) => observer.generationStarted?.(record, origin));
    const run = new GenerationRun(record, this.runContext);
    if (this.options.tracer) run.trace = this.options.tracer.startGeneration(record, trace?.request ?? {}, trace?.carrier);
    const adopted = this.options.scaleOut?.adopt(run, adoption);
    this.running.set(record.id, run);
    return { run, adopted };
  }

  /** A run ended (its terminal event is out, or kept for later): it is retained, and its lease goes unless its end waits to be stored. */
  private ended(run: GenerationRun): void {
    const { id } = run.record;
    this.running.delete(id);
    this.options.scaleOut?.disown(id, { keepLease: this.unstoredEnds.has(id) });
    this.retention.keep(id);
    run.trace?.end(run.record);
    this.observe((observer) => observer.generationFinished?.(run.record));
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
}
