/**
 * The limits every generation start passes, whatever the transport: the request size limits, the
 * per-caller cap on running generations, and the per-caller rate limit. GraphQL resolvers and
 * REST routes call the generation service through {@link GenerationAdmission.forCaller}: the
 * `GenerationAccess` of one caller, whose starts are guarded and whose list is the caller's own.
 */
import { isTerminalEvent, type GenerationEvent } from '../generations/generation-events.js';
import {
  assertChatInputWithinLimits,
  assertImageInputWithinLimits,
  type ChatCompletionInput,
  type GenerationOrigin,
  type ImageGenerationInput,
  type InputLimits,
} from '../generations/generation-inputs.js';
import { isFinalStatus } from '../generations/generation-records.js';
import type { GenerationAccess } from '../generations/generation-access.js';
import type { GenerationRecord } from '../generations/generation-records.js';
import type { Caller } from './authentication.js';
import type { RateLimiter } from './rate-limiter.js';
import type { GenerationSlot, RunningGenerationLimiter } from './running-generation-limiter.js';
import { SecurityError } from './security-error.js';

/** What a start must pass. */
export interface GenerationAdmissionOptions {
  /** Starts per caller per window. */
  rateLimiter: RateLimiter;
  /** Running generations per caller. */
  runningLimiter: RunningGenerationLimiter;
  /** Request size limits (prompt, messages). */
  inputLimits: InputLimits;
}


/** Admits generation starts per caller. One instance per app: its limits are shared by every transport. */
export class GenerationAdmission {
  constructor(private readonly options: GenerationAdmissionOptions) {}

  /**
   * The generations as `caller` may use them: `find`, `cancel` and `subscribe` as the service
   * has them; `startChat`, `startImages`, `startChatStream` and
   * `startImageStream` check, in this order:
   * 1. the size limits → GatewayError `BAD_USER_INPUT`;
   * 2. the running cap → SecurityError `RATE_LIMITED` ("too many running generations", no `Retry-After`);
   * 3. the rate limit → SecurityError `RATE_LIMITED` with `retryAfterSeconds` (refused starts are not counted);
   * then start the generation, which holds a running slot until it ends (its record's status is
   * final, or its owning event stream ended), owned by the caller. A start that throws frees its slot at once.
   * `listGenerations` lists the caller's own generations, or everyone's when `seesEveryCaller`.
   * @param caller undefined = an unauthenticated caller while keys are required: every start (and
   *   listing) is refused with SecurityError `UNAUTHORIZED` (a safety net; the HTTP and WebSocket
   *   checks refuse such callers first).
   * @param origin passed to every start (the HTTP request's id, for the generation log lines).
   * @param seesEveryCaller whether the caller lists every generation (authentication is off: callers
   *   are told apart by address only, so none is the owner of anything).
   */
  forCaller(service: GenerationAccess, caller: Caller | undefined, origin: GenerationOrigin = {}, seesEveryCaller = false): GenerationAccess {
    const { inputLimits } = this.options;
    if (caller) origin = { ...origin, callerId: caller.id };
    return {
      find: (generationId) => service.find(generationId),
      cancel: (generationId, reason) => service.cancel(generationId, reason),
      subscribe: (generationId, after, kind) => service.subscribe(generationId, after, kind),
      listGenerations: async (filter) => {
        if (!caller) throw new SecurityError('UNAUTHORIZED', 'Authentication required: send an API key.');
        const { owner: _owner, ...rest } = filter;
        return service.listGenerations(seesEveryCaller ? rest : { ...rest, owner: caller.id });
      },
      startChat: async (input: ChatCompletionInput) => {
        assertChatInputWithinLimits(input, inputLimits);
        return this.admitRecord(caller, () => service.startChat(input, origin));
      },
      startImages: async (input: ImageGenerationInput) => {
        assertImageInputWithinLimits(input, inputLimits);
        return this.admitRecord(caller, () => service.startImages(input, origin));
      },
      startChatStream: async (input: ChatCompletionInput) => {
        assertChatInputWithinLimits(input, inputLimits);
        return this.admitStream(caller, () => service.startChatStream(input, origin));
      },
      startImageStream: async (input: ImageGenerationInput) => {
        assertImageInputWithinLimits(input, inputLimits);
        return this.admitStream(caller, () => service.startImageStream(input, origin));
      },
    };
  }

  /** Takes a running slot, then counts the start against the rate limit. */
  private async admit(caller: Caller | undefined): Promise<GenerationSlot> {
    const { rateLimiter, runningLimiter } = this.options;
    if (!caller) throw new SecurityError('UNAUTHORIZED', 'Authentication required: send an API key.');
    // Without authentication callers are told apart by their address (see `Caller.id`).
    const perCaller = caller.id.startsWith('key:') ? 'per API key' : 'per client address';
    const slot = runningLimiter.reserve(caller.id);
    if (!slot) {
      throw new SecurityError(
        'RATE_LIMITED',
        `Too many running generations: at most ${runningLimiter.maxPerCaller} at once ${perCaller}; wait for one to end or cancel one.`,
      );
    }
    try {
      const decision = await rateLimiter.consume(caller.id);
      if (!decision.allowed) {
        const retryAfterSeconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        throw new SecurityError(
          'RATE_LIMITED',
          `Rate limit exceeded: at most ${rateLimiter.maxPerWindow} generation starts per minute ${perCaller}; try again in ${retryAfterSeconds} s.`,
          { retryAfterSeconds },
        );
      }
    } catch (error) {
      slot.release();
      throw error;
    }
    return slot;
  }

  private async admitRecord<Record extends GenerationRecord>(caller: Caller | undefined, start: () => Promise<Record>): Promise<Record> {
    const slot = await this.admit(caller);
    try {
      const record = await start();
      slot.holdWhile(() => !isFinalStatus(record.status));
      return record;
    } catch (error) {
      slot.release();
      throw error;
    }
  }

  private async admitStream(
    caller: Caller | undefined,
    start: () => Promise<AsyncIterableIterator<GenerationEvent>>,
  ): Promise<AsyncIterableIterator<GenerationEvent>> {
    const slot = await this.admit(caller);
    try {
      return releasingAtEnd(await start(), () => slot.release());
    } catch (error) {
      slot.release();
      throw error;
    }
  }
}

/**
 * The same events; `onEnd` runs once, when the terminal event passes, the events end or fail, or
 * the reader closes them (after the inner `return`, which cancels a generation still running).
 */
function releasingAtEnd(events: AsyncIterableIterator<GenerationEvent>, onEnd: () => void): AsyncIterableIterator<GenerationEvent> {
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      onEnd();
    }
  };
  return {
    async next() {
      try {
        const result = await events.next();
        if (result.done || isTerminalEvent(result.value)) end();
        return result;
      } catch (error) {
        end();
        throw error;
      }
    },
    async return(value?: unknown) {
      try {
        return (await events.return?.(value)) ?? { done: true, value: undefined };
      } finally {
        end();
      }
    },
    async throw(error?: unknown) {
      try {
        if (events.throw) return await events.throw(error);
        throw error;
      } finally {
        end();
      }
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
