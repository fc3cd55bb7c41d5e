/**
 * The limits every generation start passes, whatever the transport: the request size limits, the
 * per-caller cap on running generations, the per-caller rate limit, and a virtual key's own limits
 * (its caps and rate, tokens per minute, budget, allowed models and providers). GraphQL resolvers and
 * REST routes call the generation service through {@link GenerationAdmission.forCaller}: the
 * `GenerationAccess` of one caller, whose starts are guarded and whose list is the caller's own.
 */
import { GatewayError } from '../generations/gateway-error.js';
import { isTerminalEvent, type GenerationEvent } from '../generations/generation-events.js';
import {
  assertChatInputWithinLimits,
  assertImageInputWithinLimits,
  type CandidateRestriction,
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
import type { ApiKeyLimits } from '../storage/api-key-store.js';
import { SecurityError } from './security-error.js';
import type { TokenAccounting, TokenReservation } from './token-accounting.js';
import { estimateChatTokens, estimateImageTokens } from './usage-estimate.js';

/** What a start must pass. */
export interface GenerationAdmissionOptions {
  /** Starts per caller per window. */
  rateLimiter: RateLimiter;
  /** Running generations per caller. */
  runningLimiter: RunningGenerationLimiter;
  /** Request size limits (prompt, messages). */
  inputLimits: InputLimits;
  /** A virtual key's own limits; absent = no caller has any (no database). */
  keyLimits?: KeyLimitsSource;
  /** Tokens per minute and budgets of keys that have them; absent = none. */
  tokens?: TokenAccounting;
  /** Completion tokens assumed for a chat request without `maxTokens`, in token estimates (see `usage-estimate.ts`). */
  defaultCompletionTokens?: number;
}

/** The limits of a caller's own key. */
export interface KeyLimitsSource {
  /**
   * The limits of `caller`'s virtual key as they are now, or undefined for a caller without one.
   * @throws SecurityError `UNAUTHORIZED` when the key was revoked or expired since the caller
   *   authenticated; `DATABASE_UNAVAILABLE` when it cannot be read.
   */
  limitsOf(caller: Caller): Promise<ApiKeyLimits | undefined>;
}

/** What an admitted start holds until its generation ends (or its start fails). */
interface Admission {
  slot: GenerationSlot;
  tokens?: TokenReservation;
  origin: GenerationOrigin;
}

/** Admits generation starts per caller. One instance per app: its limits are shared by every transport. */
export class GenerationAdmission {
  constructor(private readonly options: GenerationAdmissionOptions) {}

  /**
   * The generations as `caller` may use them: `find`, `cancel` and `subscribe` as the service
   * has them; `startChat`, `startImages`, `startChatStream` and
   * `startImageStream` check, in this order:
   * 1. the size limits → GatewayError `BAD_USER_INPUT`;
   * 2. the caller's virtual key still valid → SecurityError `UNAUTHORIZED` (revoked or expired since it connected);
   * 3. the running cap (the key's `maxConcurrentGenerations`, else the server's) → SecurityError
   *    `RATE_LIMITED` ("too many running generations", no `Retry-After`);
   * 4. the key's token budget → `BUDGET_EXCEEDED`, then its tokens per minute → `RATE_LIMITED`
   *    with `retryAfterSeconds`, both against the request's estimate (`usage-estimate.ts`);
   * 5. the rate limit (the key's `requestsPerMinute`, else the server's) → SecurityError
   *    `RATE_LIMITED` with `retryAfterSeconds` (starts refused by any check are not counted);
   * then start the generation with the key's allowed models and providers (the service refuses
   * with GatewayError `FORBIDDEN` when no candidate is allowed), holding a running slot until it
   * ends (its record's status is final, or its owning event stream ended), owned by the caller. A
   * start that throws frees its slot and its tokens at once.
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
    const defaultCompletionTokens = this.options.defaultCompletionTokens ?? 0;
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
        return this.admitRecord(caller, origin, () => estimateChatTokens(input, defaultCompletionTokens), (admitted) => service.startChat(input, admitted));
      },
      startImages: async (input: ImageGenerationInput) => {
        assertImageInputWithinLimits(input, inputLimits);
        return this.admitRecord(caller, origin, () => estimateImageTokens(input), (admitted) => service.startImages(input, admitted));
      },
      startChatStream: async (input: ChatCompletionInput) => {
        assertChatInputWithinLimits(input, inputLimits);
        return this.admitStream(caller, origin, () => estimateChatTokens(input, defaultCompletionTokens), (admitted) => service.startChatStream(input, admitted));
      },
      startImageStream: async (input: ImageGenerationInput) => {
        assertImageInputWithinLimits(input, inputLimits);
        return this.admitStream(caller, origin, () => estimateImageTokens(input), (admitted) => service.startImageStream(input, admitted));
      },
    };
  }

  /** Checks the key, takes a running slot, reserves the estimated tokens, then counts the start against the rate limit. */
  private async admit(caller: Caller | undefined, origin: GenerationOrigin, estimate: () => number): Promise<Admission> {
    const { rateLimiter, runningLimiter } = this.options;
    if (!caller) throw new SecurityError('UNAUTHORIZED', 'Authentication required: send an API key.');
    const limits = await this.options.keyLimits?.limitsOf(caller);
    // Without authentication callers are told apart by their address (see `Caller.id`).
    const perCaller = caller.id.startsWith('key:') ? 'per API key' : 'per client address';
    const maxRunning = limits?.maxConcurrentGenerations ?? runningLimiter.maxPerCaller;
    const slot = runningLimiter.reserve(caller.id, maxRunning);
    if (!slot) {
      throw new SecurityError('RATE_LIMITED', `Too many running generations: at most ${maxRunning} at once ${perCaller}; wait for one to end or cancel one.`);
    }
    let tokens: TokenReservation | undefined;
    try {
      if (limits && hasTokenLimits(limits)) tokens = await this.options.tokens?.reserve(caller.id, estimate(), limits);
      const maxPerWindow = limits?.requestsPerMinute ?? rateLimiter.maxPerWindow;
      const decision = await rateLimiter.consume(caller.id, maxPerWindow);
      if (!decision.allowed) {
        const retryAfterSeconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        throw new SecurityError(
          'RATE_LIMITED',
          `Rate limit exceeded: at most ${maxPerWindow} generation starts per minute ${perCaller}; try again in ${retryAfterSeconds} s.`,
          { retryAfterSeconds },
        );
      }
    } catch (error) {
      tokens?.cancel();
      slot.release();
      throw error;
    }
    const restriction = limits && restrictionOf(limits);
    return {
      slot,
      ...(tokens && { tokens }),
      origin: {
        ...origin,
        ...(restriction && { restriction }),
        ...(tokens && { reservationId: tokens.id }),
      },
    };
  }

  private async admitRecord<Record extends GenerationRecord>(
    caller: Caller | undefined,
    origin: GenerationOrigin,
    estimate: () => number,
    start: (origin: GenerationOrigin) => Promise<Record>,
  ): Promise<Record> {
    const admission = await this.admit(caller, origin, estimate);
    try {
      const record = await start(admission.origin);
      admission.tokens?.started();
      admission.slot.holdWhile(() => !isFinalStatus(record.status));
      return record;
    } catch (error) {
      admission.tokens?.cancel();
      admission.slot.release();
      throw asSecurityRefusal(error);
    }
  }

  private async admitStream(
    caller: Caller | undefined,
    origin: GenerationOrigin,
    estimate: () => number,
    start: (origin: GenerationOrigin) => Promise<AsyncIterableIterator<GenerationEvent>>,
  ): Promise<AsyncIterableIterator<GenerationEvent>> {
    const admission = await this.admit(caller, origin, estimate);
    try {
      const events = await start(admission.origin);
      admission.tokens?.started();
      return releasingAtEnd(events, () => admission.slot.release());
    } catch (error) {
      admission.tokens?.cancel();
      admission.slot.release();
      throw asSecurityRefusal(error);
    }
  }
}

/**
 * The service's `FORBIDDEN` (no candidate is allowed to the key) as a security refusal, so it
 * carries HTTP status 403 like the other refusals of a key; any other error as it is.
 */
function asSecurityRefusal(error: unknown): unknown {
  return error instanceof GatewayError && error.code === 'FORBIDDEN' ? new SecurityError('FORBIDDEN', error.message) : error;
}

/** Whether a key has a token limit (tokens per minute or a budget), so its starts need an estimate. */
function hasTokenLimits(limits: ApiKeyLimits): boolean {
  return (limits.tokensPerMinute ?? 0) > 0 || limits.budgetTokens !== undefined;
}

/** The models and providers a key may use, or undefined when it may use any. */
function restrictionOf(limits: ApiKeyLimits): CandidateRestriction | undefined {
  if (!limits.allowedModels && !limits.allowedProviders) return undefined;
  return {
    ...(limits.allowedModels && { allowedModels: limits.allowedModels }),
    ...(limits.allowedProviders && { allowedProviders: limits.allowedProviders }),
  };
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
