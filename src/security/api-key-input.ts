/**
 * The validation rules of the admin operations on virtual keys (`createApiKey`, `updateApiKey`),
 * shared by every transport. Bad input becomes `GatewayError('BAD_USER_INPUT')` naming the field.
 * `null` and an absent field differ in an update: absent leaves a value as it is, `null` clears it.
 */
import { z } from 'zod';
import { parseInput } from '../generations/generation-inputs.js';
import { GatewayError } from '../generations/gateway-error.js';
import type { ApiKeyChanges, ApiKeyLimits } from '../storage/api-key-store.js';
import { BUDGET_PERIODS } from '../storage/database-schema.js';

/** Largest count a limit takes: GraphQL's `Int` (a signed 32-bit integer). */
export const MAX_LIMIT = 2_147_483_647;
/** Most entries of `allowedModels` and of `allowedProviders`. */
export const MAX_ALLOWED_ENTRIES = 100;
/** Longest key name, characters. */
export const MAX_NAME_CHARACTERS = 100;

const count = (field: string, minimum: number) =>
  z
    .number()
    .int(`${field} must be a whole number`)
    .min(minimum, `${field} must be ${minimum} or more`)
    .max(MAX_LIMIT, `${field} must be at most ${MAX_LIMIT}`);

const allowedList = (field: string) =>
  z
    .array(z.string().trim().min(1, `${field} entries must not be empty`).max(200, `${field} entries are at most 200 characters`))
    .min(1, `${field} must not be empty (leave it out, or null, to allow any)`)
    .max(MAX_ALLOWED_ENTRIES, `${field} has at most ${MAX_ALLOWED_ENTRIES} entries`);

const limitsShape = {
  requestsPerMinute: count('requestsPerMinute', 0).nullish(),
  tokensPerMinute: count('tokensPerMinute', 0).nullish(),
  maxConcurrentGenerations: count('maxConcurrentGenerations', 0).nullish(),
  budgetTokens: count('budgetTokens', 1).nullish(),
  budgetPeriod: z.enum(BUDGET_PERIODS, { error: 'budgetPeriod must be DAY, WEEK, MONTH or TOTAL' }).nullish(),
  allowedModels: allowedList('allowedModels').nullish(),
  allowedProviders: allowedList('allowedProviders').nullish(),
};

const limitsSchema = z.object(limitsShape, { error: 'limits must be an object' });

const nameSchema = z
  .string({ error: 'name must be a string' })
  .trim()
  .min(1, 'name must not be empty')
  .max(MAX_NAME_CHARACTERS, `name must be at most ${MAX_NAME_CHARACTERS} characters`);

const dateSchema = z.date({ error: 'expiresAt must be a date-time' });

const createSchema = z.object({
  name: nameSchema,
  expiresAt: dateSchema.nullish(),
  limits: limitsSchema.nullish(),
});

const updateSchema = z.object({
  name: nameSchema.optional(),
  expiresAt: dateSchema.nullish(),
  limits: limitsSchema.optional(),
});

/** A validated `createApiKey` input. */
export interface NewApiKey {
  name: string;
  expiresAt?: Date;
  limits: ApiKeyLimits;
}

/**
 * Checks that a budget has both its amount and its period.
 * @throws GatewayError `BAD_USER_INPUT` naming the missing one.
 */
export function assertBudgetComplete(limits: ApiKeyLimits): void {
  if (limits.budgetTokens !== undefined && limits.budgetPeriod === undefined) {
    throw new GatewayError('BAD_USER_INPUT', 'limits.budgetPeriod: give the period (DAY, WEEK, MONTH or TOTAL) with budgetTokens');
  }
  if (limits.budgetPeriod !== undefined && limits.budgetTokens === undefined) {
    throw new GatewayError('BAD_USER_INPUT', 'limits.budgetTokens: give the number of tokens with budgetPeriod');
  }
}

/**
 * Validates a `createApiKey` input.
 * @param now the current time: `expiresAt` must be after it.
 * @throws GatewayError `BAD_USER_INPUT` naming the field.
 */
export function parseNewApiKey(input: unknown, now: Date): NewApiKey {
  const values = parseInput(createSchema, input);
  if (values.expiresAt != null && values.expiresAt.getTime() <= now.getTime()) {
    throw new GatewayError('BAD_USER_INPUT', 'expiresAt: must be in the future');
  }
  const limits: ApiKeyLimits = {};
  for (const [field, value] of Object.entries(values.limits ?? {})) {
    if (value != null) (limits as Record<string, unknown>)[field] = value;
  }
  assertBudgetComplete(limits);
  return { name: values.name, ...(values.expiresAt != null && { expiresAt: values.expiresAt }), limits };
}

/**
 * Validates an `updateApiKey` input (the budget's completeness is checked against the key as it is,
 * by the caller). An `expiresAt` in the past is allowed: it expires the key now.
 * @throws GatewayError `BAD_USER_INPUT` naming the field.
 */
export function parseApiKeyChanges(input: unknown): ApiKeyChanges {
  const values = parseInput(updateSchema, input);
  return {
    ...(values.name !== undefined && { name: values.name }),
    ...(values.expiresAt !== undefined && { expiresAt: values.expiresAt }),
    ...(values.limits !== undefined && { limits: values.limits }),
  };
}

/** `limits` with `changes` applied (`null` removes a limit). */
export function withChanges(limits: ApiKeyLimits, changes: ApiKeyChanges['limits']): ApiKeyLimits {
  const merged: Record<string, unknown> = { ...limits };
  for (const [field, value] of Object.entries(changes ?? {})) {
    if (value === null) delete merged[field];
    else if (value !== undefined) merged[field] = value;
  }
  return merged as ApiKeyLimits;
}
