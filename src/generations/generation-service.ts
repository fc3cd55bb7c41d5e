/**
 * The generation service: the one place that runs generations. Transports (GraphQL resolvers,
 * later REST routes) hand it requests; it resolves the provider, runs the provider's async
 * generator, numbers the events, appends them to the event log, publishes them, and owns each
 * generation's AbortController. Subscribers replay from the log, then follow live events.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ProviderError, type ChatProvider, type ChatRequest, type FinishReason, type Usage } from '../providers/provider.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';
import type { EventLog } from './event-log.js';
import { GatewayError } from './gateway-error.js';
import {
  isTerminalEvent,
  type GenerationErrorShape,
  type GenerationEvent,
  type UnnumberedGenerationEvent,
} from './generation-events.js';
import type { GenerationPubSub } from './generation-pub-sub.js';

/** Lifecycle of a generation. QUEUED and RUNNING are live; the others are final. */
export type GenerationStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** What the service knows about one chat generation. Times are `Date`s; text is what has streamed so far. */
export interface ChatGenerationRecord {
  kind: 'chat';
  id: string;
  status: GenerationStatus;
  provider: string;
  model: string;
  createdAt: Date;
  finishedAt?: Date;
  text: string;
  finishReason?: FinishReason;
  usage?: Usage;
  error?: GenerationErrorShape;
  /** Sequence of the last event appended. */
  lastSequence: number;
}

/** Any generation record (chat only for now; images come next). */
export type GenerationRecord = ChatGenerationRecord;

const chatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant'], { error: 'role must be system, user or assistant' }),
  content: z.string({ error: 'content must be a string' }),
});

/** The validation rules of a chat request, shared by every transport. */
const chatCompletionInputSchema = z.object({
  messages: z.array(chatMessageSchema).min(1, 'messages must contain at least one message'),
  model: z.string().nullish(),
  provider: z.string().nullish(),
  temperature: z.number().min(0, 'temperature must be between 0 and 2').max(2, 'temperature must be between 0 and 2').nullish(),
  topP: z.number().gt(0, 'topP must be greater than 0 and at most 1').max(1, 'topP must be greater than 0 and at most 1').nullish(),
  maxTokens: z.number().int('maxTokens must be a whole number').positive('maxTokens must be greater than 0').nullish(),
  stop: z.array(z.string().min(1, 'stop sequences must not be empty')).max(16, 'at most 16 stop sequences').nullish(),
  seed: z.number().int('seed must be a whole number').nullish(),
});

/** A chat request as transports hand it over; `null` and `undefined` both mean "not set". */
export type ChatCompletionInput = z.input<typeof chatCompletionInputSchema>;

interface RunningGeneration {
  record: GenerationRecord;
  controller: AbortController;
  /** Settles when the terminal event has been appended and published. */
  finished: Promise<void>;
}

/** Why a generation was cancelled; the abort reason carried by its AbortController. */
export class GenerationCancellation extends Error {
  override readonly name = 'GenerationCancellation';
}

/** Dependencies and settings of the service. */
export interface GenerationServiceOptions {
  registry: ProviderRegistry;
  eventLog: EventLog;
  pubSub: GenerationPubSub;
  /** How long a finished generation stays queryable and replayable, ms. */
  retentionMs: number;
}

/** Lets a closing subscriber stop `follow` while it waits. */
interface FollowControl {
  closed: boolean;
  wake?: () => void;
}

/** Live events a subscriber may hold before it falls back to reading the log. */
const LIVE_BUFFER_LIMIT = 256;

/** Starts, cancels, looks up and streams generations. */
export class GenerationService {
  private readonly records = new Map<string, GenerationRecord>();
  private readonly running = new Map<string, RunningGeneration>();
  private readonly expiryTimers = new Set<NodeJS.Timeout>();
  /** Subscribers currently following a generation, each with a way to hear when it has ended. */
  private readonly followers = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly options: GenerationServiceOptions) {}

  /**
   * Validates the request, resolves provider and model, and starts the generation in the background.
   * Returns at once with the RUNNING record; event 1 (`chat-completion-started`) is already in the log.
   * @throws GatewayError `BAD_USER_INPUT`, `MODEL_NOT_FOUND` or `PROVIDER_NOT_FOUND`; nothing is started then.
   */
  async startChat(input: ChatCompletionInput): Promise<ChatGenerationRecord> {
    if (this.stopped) throw new Error('the generation service is stopped');
    const parsed = chatCompletionInputSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new GatewayError('BAD_USER_INPUT', `${where}${issue.message}`);
    }
    const values = parsed.data;
    const { provider, model } = await this.options.registry.resolveChat(values);
    const request: ChatRequest = {
      model,
      messages: values.messages,
      ...(values.temperature != null && { temperature: values.temperature }),
      ...(values.topP != null && { topP: values.topP }),
      ...(values.maxTokens != null && { maxTokens: values.maxTokens }),
      ...(values.stop != null && values.stop.length > 0 && { stop: values.stop }),
      ...(values.seed != null && { seed: values.seed }),
    };
    const record: ChatGenerationRecord = {
      kind: 'chat',
      id: randomUUID(),
      status: 'running',
      provider: provider.id,
      model,
      createdAt: new Date(),
      text: '',
      lastSequence: 0,
    };
    this.records.set(record.id, record);
    const controller = new AbortController();
    await this.emit(record, { type: 'chat-completion-started', provider: provider.id, model });
    const finished = this.runChat(record, provider, request, controller.signal);
    this.running.set(record.id, { record, controller, finished });
    return record;
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
    const record = this.records.get(generationId);
    if (!record) throw new GatewayError('GENERATION_NOT_FOUND', `Unknown generation "${generationId}".`);
    const running = this.running.get(generationId);
    if (running) {
      running.controller.abort(new GenerationCancellation(reason));
      await running.finished;
    }
    return record;
  }

  /**
   * The generation's events with `sequence > after`: first those in the log, then live ones,
   * ending after the terminal event. No event is lost or repeated: live events are buffered from
   * before the replay starts, and any gap in sequence is filled from the log. Closing the
   * iterator (`return()`) ends it at once, even while it waits for the next event.
   * @throws GatewayError `GENERATION_NOT_FOUND` or `BAD_USER_INPUT` (before the first event).
   */
  async subscribe(generationId: string, after = 0): Promise<AsyncIterableIterator<GenerationEvent>> {
    const record = this.records.get(generationId);
    if (!record) throw new GatewayError('GENERATION_NOT_FOUND', `Unknown generation "${generationId}".`);
    if (!Number.isInteger(after) || after < 0) throw new GatewayError('BAD_USER_INPUT', 'after must be a whole number, 0 or more');
    return this.closable(record, after);
  }

  /**
   * Starts a chat generation and streams all its events; closing the stream before the terminal
   * event cancels the generation (reason `subscription closed`).
   * @throws GatewayError as `startChat` does, before anything starts.
   */
  async startChatStream(input: ChatCompletionInput): Promise<AsyncIterableIterator<GenerationEvent>> {
    const record = await this.startChat(input);
    return this.closable(record, 0, async () => {
      if (!isFinal(record.status)) await this.cancel(record.id, 'subscription closed');
    });
  }

  /** Wraps `follow` so that `return()` wakes a waiting reader and runs `onClose` first. */
  private closable(
    record: GenerationRecord,
    after: number,
    onClose?: () => Promise<void>,
  ): AsyncIterableIterator<GenerationEvent> {
    const control: FollowControl = { closed: false };
    const events = this.tracked(this.follow(record, after, control));
    const close = async (): Promise<IteratorResult<GenerationEvent>> => {
      if (!control.closed) {
        control.closed = true;
        control.wake?.();
        await onClose?.();
      }
      return events.return(undefined);
    };
    return {
      next: () => events.next(),
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

  /** Counts a subscriber as following from its first read until it ends, so `stop()` can wait for it. */
  private async *tracked(events: AsyncGenerator<GenerationEvent, void, undefined>): AsyncGenerator<GenerationEvent, void, undefined> {
    let ended!: () => void;
    const following = new Promise<void>((resolve) => (ended = resolve));
    this.followers.add(following);
    try {
      yield* events;
    } finally {
      this.followers.delete(following);
      ended();
    }
  }

  private async *follow(
    record: GenerationRecord,
    after: number,
    control: FollowControl,
  ): AsyncGenerator<GenerationEvent, void, undefined> {
    const { eventLog, pubSub } = this.options;
    let last = after;
    if (isFinal(record.status) && last >= record.lastSequence) return;

    // Listen before reading the log, so nothing published in between is missed.
    const live: GenerationEvent[] = [];
    let overflowed = false;
    const subscription = pubSub.subscribe('generation:event', record.id);
    const iterator = subscription[Symbol.asyncIterator]();
    const pump = (async () => {
      for (let result = await iterator.next(); !result.done; result = await iterator.next()) {
        if (live.length < LIVE_BUFFER_LIMIT) live.push(result.value);
        else overflowed = true; // the log still has it; the reader catches up from there
        control.wake?.();
      }
    })();
    try {
      const fromLog = async function* (until = Infinity): AsyncGenerator<GenerationEvent, boolean> {
        for (const event of await eventLog.read(record.id, last)) {
          if (event.sequence > until) break;
          yield event;
          last = event.sequence;
          if (isTerminalEvent(event)) return true;
        }
        return false;
      };
      if (yield* fromLog()) return;
      while (!control.closed) {
        if (overflowed) {
          overflowed = false;
          live.length = 0;
          if (yield* fromLog()) return;
          continue;
        }
        const event = live.shift();
        if (!event) {
          if (isFinal(record.status) && last >= record.lastSequence) return;
          await new Promise<void>((resolve) => (control.wake = resolve));
          control.wake = undefined;
          continue;
        }
        if (event.sequence <= last) continue;
        if (event.sequence > last + 1 && (yield* fromLog(event.sequence - 1))) return;
        yield event;
        last = event.sequence;
        if (isTerminalEvent(event)) return;
      }
    } finally {
      await iterator.return?.();
      await pump;
    }
  }

  /**
   * Refuses new generations, cancels every running one (reason `server shutting down`), then waits
   * up to `drainMs` (default 2000 ms) for subscribers to receive their terminal events.
   */
  async stop(drainMs = 2_000): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.running.keys()].map((id) => this.cancel(id, 'server shutting down')));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.followers),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs).unref())),
    ]);
    clearTimeout(timer);
    for (const timer of this.expiryTimers) clearTimeout(timer);
    this.expiryTimers.clear();
  }

  /** Number of generations held in memory (running and retained). */
  get size(): number {
    return this.records.size;
  }

  private async runChat(
    record: ChatGenerationRecord,
    provider: ChatProvider,
    request: ChatRequest,
    signal: AbortSignal,
  ): Promise<void> {
    let iterator: AsyncIterator<import('../providers/provider.js').ChatStreamPart> | undefined;
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    aborted.catch(() => {});
    let done = false;
    try {
      iterator = provider.streamChat(request, { signal })[Symbol.asyncIterator]();
      let finishReason: FinishReason = 'stop';
      let usage: Usage | undefined;
      for (;;) {
        const result = await Promise.race([iterator.next(), aborted]);
        if (result.done) {
          done = true;
          break;
        }
        const part = result.value;
        if (part.type === 'text-delta') {
          if (part.text.length === 0) continue;
          record.text += part.text;
          await this.emit(record, { type: 'chat-token-delta', text: part.text });
        } else {
          finishReason = part.finishReason;
          usage = part.usage;
        }
        if (signal.aborted) throw signal.reason;
      }
      record.finishReason = finishReason;
      if (usage) record.usage = usage;
      await this.finish(record, 'completed', {
        type: 'chat-completion-completed',
        finishReason,
        ...(usage && { usage }),
        text: record.text,
      });
    } catch (error) {
      if (signal.aborted) {
        const reason = signal.reason instanceof GenerationCancellation ? signal.reason.message : 'cancelled';
        await this.finish(record, 'cancelled', { type: 'generation-cancelled', reason });
      } else {
        const generationError = toGenerationError(error, provider.id);
        record.error = generationError;
        await this.finish(record, 'failed', { type: 'generation-failed', error: generationError });
      }
    } finally {
      if (iterator && !done) {
        // Closes the provider's generator (which aborts its upstream request); not awaited, since a
        // provider busy in a read only returns once that read settles.
        iterator.return?.()?.catch(() => {});
      }
    }
  }

  private async finish(record: GenerationRecord, status: GenerationStatus, event: UnnumberedGenerationEvent): Promise<void> {
    record.status = status;
    record.finishedAt = new Date();
    try {
      await this.emit(record, event);
    } finally {
      this.running.delete(record.id);
      this.scheduleExpiry(record.id);
    }
  }

  private scheduleExpiry(generationId: string): void {
    const timer = setTimeout(() => {
      this.expiryTimers.delete(timer);
      this.records.delete(generationId);
      void this.options.eventLog.delete(generationId);
    }, this.options.retentionMs);
    timer.unref();
    this.expiryTimers.add(timer);
  }

  private async emit(record: GenerationRecord, event: UnnumberedGenerationEvent): Promise<void> {
    record.lastSequence += 1;
    const numbered = { ...event, generationId: record.id, sequence: record.lastSequence } as GenerationEvent;
    await this.options.eventLog.append(numbered);
    this.options.pubSub.publish('generation:event', record.id, numbered);
  }
}

function isFinal(status: GenerationStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** Maps any failure of a provider to the client-facing error shape; unexpected errors keep no internals. */
function toGenerationError(error: unknown, providerId: string): GenerationErrorShape {
  if (error instanceof ProviderError) {
    return { code: error.code, message: error.message, provider: error.provider };
  }
  if (error instanceof GatewayError) return { code: error.code, message: error.message, provider: providerId };
  console.error(`[gateway] provider ${providerId} failed unexpectedly:`, error);
  return { code: 'PROVIDER_ERROR', message: `Provider ${providerId} failed unexpectedly.`, provider: providerId };
}
