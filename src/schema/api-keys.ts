/**
 * Virtual API keys, for admins (the master key): the `ApiKey` type and its limits, `createApiKey`,
 * `updateApiKey`, `revokeApiKey` and the `apiKeys` connection. Resolvers only translate; the
 * security layer checks the caller and does the work (`security/api-key-administration.ts`).
 */
import { apiKeyCursor, DEFAULT_API_KEY_PAGE_SIZE, MAX_API_KEY_PAGE_SIZE } from '../security/api-key-administration.js';
import { apiKeyStatus } from '../security/virtual-keys.js';
import type { ApiKeyLimits as ApiKeyLimitsShape, ApiKeyPage, ApiKeyRecord } from '../storage/api-key-store.js';
import { builder } from './builder.js';
import { PageInfo } from './generation.js';
import './scalars.js';

const ADMIN_ERRORS =
  'Needs the master key (MASTER_KEY) and a database. Errors: UNAUTHORIZED, FORBIDDEN, DATABASE_NOT_CONFIGURED (DATABASE_URL=none), DATABASE_UNAVAILABLE, BAD_USER_INPUT';

const BudgetPeriod = builder.enumType('BudgetPeriod', {
  description: 'What a token budget counts over: a UTC calendar DAY, WEEK (from Monday) or MONTH, or the key\'s whole life (TOTAL, never resets).',
  values: { DAY: { value: 'day' }, WEEK: { value: 'week' }, MONTH: { value: 'month' }, TOTAL: { value: 'total' } } as const,
});

const ApiKeyStatus = builder.enumType('ApiKeyStatus', {
  description: 'Whether a virtual key can be used: ACTIVE, EXPIRED (past expiresAt) or REVOKED.',
  values: { ACTIVE: { value: 'active' }, EXPIRED: { value: 'expired' }, REVOKED: { value: 'revoked' } } as const,
});

const ApiKeyLimits = builder.objectRef<ApiKeyLimitsShape>('ApiKeyLimits').implement({
  description: "A virtual key's limits; null = none of its own (requestsPerMinute and maxConcurrentGenerations then follow the server's).",
  fields: (t) => ({
    requestsPerMinute: t.exposeInt('requestsPerMinute', { nullable: true, description: 'Generation starts per minute (0 = no limit).' }),
    tokensPerMinute: t.exposeInt('tokensPerMinute', { nullable: true, description: 'Prompt plus completion tokens per minute (0 = no limit).' }),
    maxConcurrentGenerations: t.exposeInt('maxConcurrentGenerations', { nullable: true, description: 'Generations running at once (0 = no limit).' }),
    budgetTokens: t.exposeInt('budgetTokens', { nullable: true, description: 'Prompt plus completion tokens per budgetPeriod.' }),
    budgetPeriod: t.field({ type: BudgetPeriod, nullable: true, resolve: (limits) => limits.budgetPeriod }),
    allowedModels: t.exposeStringList('allowedModels', { nullable: true, description: 'Model ids, provider:model or aliases the key may use; null = any.' }),
    allowedProviders: t.exposeStringList('allowedProviders', { nullable: true, description: 'Provider ids the key may use; null = any.' }),
  }),
});

const ApiKey = builder.objectRef<ApiKeyRecord>('ApiKey').implement({
  description: 'A virtual API key. The key itself is never shown again after createApiKey; keyPrefix tells keys apart. Callers using it own their generations as key:<id>.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    keyPrefix: t.exposeString('keyPrefix', { description: 'The first characters of the key (never enough to use it).' }),
    status: t.field({ type: ApiKeyStatus, resolve: (record) => apiKeyStatus(record) }),
    createdAt: t.field({ type: 'DateTime', resolve: (record) => record.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (record) => record.updatedAt }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (record) => record.expiresAt }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (record) => record.revokedAt }),
    limits: t.field({ type: ApiKeyLimits, resolve: (record) => record.limits }),
  }),
});

const CreatedApiKey = builder.objectRef<{ key: string; apiKey: ApiKeyRecord }>('CreatedApiKey').implement({
  description: 'A new virtual key: the key itself, shown this once (only its SHA-256 is stored), and its record.',
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The key, sk-gw-… (send it as Authorization: Bearer <key>). Store it now: it cannot be shown again.' }),
    apiKey: t.field({ type: ApiKey, resolve: (created) => created.apiKey }),
  }),
});

const ApiKeyLimitsInput = builder.inputType('ApiKeyLimitsInput', {
  description: 'Limits of a virtual key. In updateApiKey an absent field stays as it is and null removes the limit.',
  fields: (t) => ({
    requestsPerMinute: t.int({ description: "Generation starts per minute (0 = no limit); null = the server's RATE_LIMIT_PER_MINUTE." }),
    tokensPerMinute: t.int({ description: 'Prompt plus completion tokens per minute, checked before a start against its estimate (0 or null = no limit).' }),
    maxConcurrentGenerations: t.int({ description: "Generations running at once (0 = no limit); null = the server's MAX_CONCURRENT_GENERATIONS_PER_KEY." }),
    budgetTokens: t.int({ description: 'Prompt plus completion tokens per budgetPeriod (with budgetPeriod); past it starts get BUDGET_EXCEEDED.' }),
    budgetPeriod: t.field({ type: BudgetPeriod }),
    allowedModels: t.stringList({ description: `Model ids, provider:model or aliases the key may use (1 to 100); null = any.` }),
    allowedProviders: t.stringList({ description: 'Provider ids the key may use (1 to 100); null = any.' }),
  }),
});

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'What the key is for (1 to 100 characters).' }),
    expiresAt: t.field({ type: 'DateTime', description: 'When the key stops working (in the future); null = never.' }),
    limits: t.field({ type: ApiKeyLimitsInput }),
  }),
});

const UpdateApiKeyInput = builder.inputType('UpdateApiKeyInput', {
  description: 'Changes to a virtual key: an absent field stays as it is; expiresAt: null removes the expiry (a time in the past expires the key now).',
  fields: (t) => ({
    name: t.string(),
    expiresAt: t.field({ type: 'DateTime' }),
    limits: t.field({ type: ApiKeyLimitsInput }),
  }),
});

const ApiKeyEdge = builder.objectRef<ApiKeyRecord>('ApiKeyEdge').implement({
  description: 'A virtual key in a list, with its cursor.',
  fields: (t) => ({
    cursor: t.string({ resolve: apiKeyCursor }),
    node: t.field({ type: ApiKey, resolve: (record) => record }),
  }),
});

const ApiKeyConnection = builder.objectRef<ApiKeyPage>('ApiKeyConnection').implement({
  description: 'A page of virtual keys, newest first.',
  fields: (t) => ({
    edges: t.field({ type: [ApiKeyEdge], resolve: (page) => page.records }),
    nodes: t.field({ type: [ApiKey], resolve: (page) => page.records }),
    pageInfo: t.field({
      type: PageInfo,
      resolve: (page) => ({ hasNextPage: page.hasNextPage, endCursor: page.records.length > 0 ? apiKeyCursor(page.records.at(-1)!) : null }),
    }),
  }),
});

builder.queryField('apiKeys', (t) =>
  t.field({
    type: ApiKeyConnection,
    description: `Virtual keys, newest first, revoked and expired ones included. first: 1 to ${MAX_API_KEY_PAGE_SIZE}, default ${DEFAULT_API_KEY_PAGE_SIZE}; after: the endCursor of the previous page. ${ADMIN_ERRORS}.`,
    args: { first: t.arg.int(), after: t.arg.string() },
    resolve: (_root, { first, after }, { apiKeys }) => apiKeys.list({ first, after }),
  }),
);

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: CreatedApiKey,
    description: `Makes a virtual key and returns it once. ${ADMIN_ERRORS}.`,
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_root, { input }, { apiKeys }) => apiKeys.create(input),
  }),
);

builder.mutationField('updateApiKey', (t) =>
  t.field({
    type: ApiKey,
    description: `Changes a virtual key's name, expiry or limits; applies at once on this instance, within API_KEY_CACHE_TTL_MS on others. ${ADMIN_ERRORS}, API_KEY_NOT_FOUND.`,
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateApiKeyInput, required: true }) },
    resolve: (_root, { id, input }, { apiKeys }) => apiKeys.update(id, input),
  }),
);

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: ApiKey,
    description: `Revokes a virtual key: refused (UNAUTHORIZED) at once on this instance, within API_KEY_CACHE_TTL_MS on others; its open graphql-ws sockets close with 4403. Revoking twice keeps the first time. ${ADMIN_ERRORS}, API_KEY_NOT_FOUND.`,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { apiKeys }) => apiKeys.revoke(id),
  }),
);
