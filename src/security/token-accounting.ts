/**
 * A virtual key's tokens per minute and token budget, checked before a generation starts against an
 * estimate (`usage-estimate.ts`) and settled with the real usage when it ends. A start takes a
 * {@link TokenReservation}; the generation service names it in `generationStarted` (the origin's
 * `reservationId`), and this observer settles it in `generationFinished`:
 * - the budget (`token-budget-ledger.ts`): the estimate is held until the generation ends, then
 *   its real usage counts until its row is in the database sum;
 * - the tokens per minute (`token-rate-limiter.ts`): the estimate counted at the start is replaced
 *   by the real usage.
 * A generation that no observer here sees start (queued for a worker, role `api`) releases its
 * budget hold when the start returns; its row counts once written (by the worker's instance).
 */
import { randomUUID } from 'node:crypto';
import type { GenerationObserver } from '../generations/generation-observer.js';
import type { GenerationOrigin } from '../generations/generation-inputs.js';
import type { GenerationRecord } from '../generations/generation-records.js';
import type { BudgetPeriod } from '../storage/database-schema.js';
import { budgetPeriodReset, budgetPeriodStart } from './budget-periods.js';
import { SecurityError } from './security-error.js';
import type { TokenBudgetLedger } from './token-budget-ledger.js';
import type { TokenRateLimiter } from './token-rate-limiter.js';

/** The token limits of a key; absent (or 0 tokens per minute) = none. */
export interface KeyTokenLimits {
  tokensPerMinute?: number;
  budgetTokens?: number;
  budgetPeriod?: BudgetPeriod;
}

/** A start's tokens, reserved by {@link TokenAccounting.reserve}. */
export interface TokenReservation {
  /** Goes to the generation service as the origin's `reservationId`. */
  readonly id: string;
  /** The start returned (the generation runs, here or queued). */
  started(): void;
  /** The start failed: nothing is counted. */
  cancel(): void;
}

/** Settings of {@link TokenAccounting}. */
export interface TokenAccountingOptions {
  /** Budgets; absent = no database, so no budgets (they live in the database). */
  ledger?: TokenBudgetLedger;
  rateLimiter: TokenRateLimiter;
  /** The clock, ms since the epoch (injectable for tests). */
  now?: () => number;
}

interface Reservation {
  id: string;
  owner: string;
  budgeted: boolean;
  perMinute: boolean;
  generationId?: string;
}

/** The tokens a generation used as its usage row counts them: prompt plus completion (chats), none (images). */
export function tokensUsedBy(record: GenerationRecord): number {
  if (record.kind !== 'chat') return 0;
  return (record.usage?.promptTokens ?? 0) + (record.usage?.completionTokens ?? 0);
}

/** See the module comment. */
export class TokenAccounting implements GenerationObserver {
  private readonly reservations = new Map<string, Reservation>();
  private readonly byGeneration = new Map<string, Reservation>();
  private readonly now: () => number;

  constructor(private readonly options: TokenAccountingOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Checks `estimate` tokens against the owner's budget, then its tokens per minute, and reserves them.
   * @returns the reservation, or undefined when `limits` has no token limit.
   * @throws SecurityError `BUDGET_EXCEEDED` (the budget is spent or this request would exceed it;
   *   the message names the use, the budget and when the period resets, `Retry-After` until then
   *   unless the period is `total`, `extensions.resetsAt`); `RATE_LIMITED` with `retryAfterSeconds`
   *   (tokens per minute); `DATABASE_UNAVAILABLE` when the key's use cannot be read.
   */
  async reserve(owner: string, estimate: number, limits: KeyTokenLimits): Promise<TokenReservation | undefined> {
    const { ledger, rateLimiter } = this.options;
    const budgeted = ledger !== undefined && limits.budgetTokens !== undefined && limits.budgetPeriod !== undefined;
    const perMinute = (limits.tokensPerMinute ?? 0) > 0;
    if (!budgeted && !perMinute) return undefined;
    const reservation: Reservation = { id: randomUUID(), owner, budgeted, perMinute };
    if (budgeted) {
      // Held before the use is read, so two concurrent starts see each other (both may be refused, never both admitted past the budget).
      ledger.hold(owner, reservation.id, estimate);
      try {
        await this.checkBudget(owner, estimate, limits.budgetTokens!, limits.budgetPeriod!);
      } catch (error) {
        ledger.release(owner, reservation.id);
        throw error;
      }
    }
    if (perMinute) {
      const limit = limits.tokensPerMinute!;
      const decision = await rateLimiter.reserve(owner, reservation.id, estimate, limit);
      if (!decision.allowed) {
        if (budgeted) ledger!.release(owner, reservation.id);
        const retryAfterSeconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        throw new SecurityError(
          'RATE_LIMITED',
          `Token rate limit exceeded: this API key may use ${limit} tokens per minute and this request is estimated at ${estimate}; try again in ${retryAfterSeconds} s.`,
          { retryAfterSeconds },
        );
      }
    }
    this.reservations.set(reservation.id, reservation);
    return {
      id: reservation.id,
      started: () => {
        // Not taken by a generation started here: the budget hold goes (the row counts once written).
        if (this.reservations.get(reservation.id) === reservation && reservation.generationId === undefined) {
          this.reservations.delete(reservation.id);
          if (budgeted) ledger!.release(owner, reservation.id);
        }
      },
      cancel: () => {
        if (this.reservations.get(reservation.id) !== reservation) return;
        this.reservations.delete(reservation.id);
        if (reservation.generationId !== undefined) this.byGeneration.delete(reservation.generationId);
        if (budgeted) ledger!.release(owner, reservation.id);
        if (perMinute) void rateLimiter.cancel(owner, reservation.id);
      },
    };
  }

  /** A generation started with a reservation (`origin.reservationId`): the reservation is now the generation's. */
  generationStarted(record: GenerationRecord, origin: GenerationOrigin): void {
    const reservation = origin.reservationId === undefined ? undefined : this.reservations.get(origin.reservationId);
    if (!reservation) return;
    reservation.generationId = record.id;
    this.byGeneration.set(record.id, reservation);
  }

  /** A generation ended: its budget hold becomes its real usage (until its row is written), and its tokens-per-minute entry too. */
  generationFinished(record: GenerationRecord): void {
    const reservation = this.byGeneration.get(record.id);
    if (!reservation) return;
    this.byGeneration.delete(record.id);
    this.reservations.delete(reservation.id);
    const tokens = tokensUsedBy(record);
    const { ledger, rateLimiter } = this.options;
    if (reservation.budgeted) {
      ledger!.release(reservation.owner, reservation.id);
      ledger!.ended(reservation.owner, record.id, tokens, record.finishedAt ?? new Date(this.now()));
    }
    if (reservation.perMinute) void rateLimiter.settle(reservation.owner, reservation.id, tokens);
  }

  /** The usage recorder wrote these rows: their tokens are in the database from now on. */
  written(rows: ReadonlyArray<{ id: string }>): void {
    this.options.ledger?.written(rows);
  }

  /** Reservations not settled yet (for tests of the bounds). */
  get size(): number {
    return this.reservations.size;
  }

  private async checkBudget(owner: string, estimate: number, budgetTokens: number, period: BudgetPeriod): Promise<void> {
    const now = new Date(this.now());
    let used: number;
    try {
      used = (await this.options.ledger!.used(owner, budgetPeriodStart(period, now))) - estimate;
    } catch {
      throw new SecurityError('DATABASE_UNAVAILABLE', "The API key's token use cannot be read from the database right now; try again shortly.");
    }
    if (used + estimate <= budgetTokens) return;
    const reset = budgetPeriodReset(period, now);
    const periodName = period === 'total' ? 'in total' : `this ${period} (UTC)`;
    const spent = used >= budgetTokens ? 'is spent' : `would be exceeded: this request is estimated at ${estimate} tokens (ask for fewer maxTokens)`;
    const resets = reset ? ` The budget resets at ${reset.toISOString()}.` : ' The budget does not reset.';
    throw new SecurityError('BUDGET_EXCEEDED', `Token budget ${spent}: this API key used ${used} of its ${budgetTokens} tokens ${periodName}.${resets}`, {
      ...(reset && { retryAfterSeconds: Math.max(1, Math.ceil((reset.getTime() - now.getTime()) / 1000)) }),
      extensions: { resetsAt: reset?.toISOString() ?? null, budgetTokens, usedTokens: used },
    });
  }
}
