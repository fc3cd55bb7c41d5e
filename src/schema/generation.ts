/**
 * What every generation shares: the `Generation` interface, its status, its error, the
 * `GenerationEvent` interface every event implements, the shared terminal events, and the
 * `generation` query and `cancelGeneration` mutation.
 */
import type {
  GenerationCancelledEvent,
  GenerationErrorShape,
  GenerationEvent,
  GenerationFailedEvent,
  ProviderAttemptFailedEvent,
} from '../generations/generation-events.js';
import type { GenerationRecord } from '../generations/generation-records.js';
import { cursorOf, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../generations/generation-listing.js';
import { builder } from './builder.js';
import './scalars.js';

/** GraphQL type name of each event, by its `type`. */
const eventTypeNames: Record<GenerationEvent['type'], string> = {
  'chat-completion-started': 'ChatCompletionStarted',
  'chat-token-delta': 'ChatTokenDelta',
  'chat-reasoning-delta': 'ChatReasoningDelta',
  'chat-tool-call-delta': 'ChatToolCallDelta',
  'chat-completion-completed': 'ChatCompletionCompleted',
  'image-generation-started': 'ImageGenerationStarted',
  'image-generation-progress': 'ImageGenerationProgress',
  'image-generation-completed': 'ImageGenerationCompleted',
  'provider-attempt-failed': 'ProviderAttemptFailed',
  'generation-failed': 'GenerationFailed',
  'generation-cancelled': 'GenerationCancelled',
};

/** The GraphQL type name of an event (for union and interface resolution). */
export function eventTypeName(event: GenerationEvent): string {
  return eventTypeNames[event.type];
}

export const GenerationStatus = builder.enumType('GenerationStatus', {
  description: 'Lifecycle of a generation: QUEUED and RUNNING are live, the others final.',
  values: {
    QUEUED: { value: 'queued' },
    RUNNING: { value: 'running' },
    COMPLETED: { value: 'completed' },
    FAILED: { value: 'failed' },
    CANCELLED: { value: 'cancelled' },
  } as const,
});

export const GenerationError = builder.objectRef<GenerationErrorShape>('GenerationError').implement({
  description:
    'Why a generation failed: a stable code (e.g. UPSTREAM_TIMEOUT, RATE_LIMITED, CONTEXT_LENGTH_EXCEEDED when the messages do not fit the model\'s context, GENERATION_TIMEOUT when it ran past the server\'s GENERATION_TIMEOUT_MS; scaled out also WORKER_LOST or INSTANCE_LOST when the worker or instance running it died) and the message.',
  fields: (t) => ({
    code: t.exposeString('code'),
    message: t.exposeString('message'),
    provider: t.exposeString('provider', { nullable: true }),
  }),
});

export const Generation = builder.interfaceRef<GenerationRecord>('Generation').implement({
  description: 'A chat or image generation.',
  resolveType: (record) => (record.kind === 'chat' ? 'ChatGeneration' : 'ImageGeneration'),
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: GenerationStatus, resolve: (record) => record.status }),
    model: t.exposeString('model', { nullable: true }),
    provider: t.exposeString('provider', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (record) => record.createdAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (record) => record.finishedAt }),
  }),
});

export const GenerationEventInterface = builder.interfaceRef<GenerationEvent>('GenerationEvent').implement({
  description: 'Fields every event of a generation has. Sequences run 1, 2, 3, … per generation with no gaps.',
  resolveType: eventTypeName,
  fields: (t) => ({
    generationId: t.exposeID('generationId'),
    sequence: t.exposeInt('sequence', { description: 'Position in the generation\'s event log, from 1.' }),
  }),
});

export const GenerationFailed = builder.objectRef<GenerationFailedEvent>('GenerationFailed').implement({
  description: 'Terminal: the generation failed.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'generation-failed',
  fields: (t) => ({
    error: t.field({ type: GenerationError, resolve: (event) => event.error }),
  }),
});

export const ProviderAttemptFailed = builder.objectRef<ProviderAttemptFailedEvent>('ProviderAttemptFailed').implement({
  description: 'Not terminal: a provider failed before any content and the next one is tried (a Started event naming it follows).',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'provider-attempt-failed',
  fields: (t) => ({
    provider: t.exposeString('provider'),
    error: t.field({ type: GenerationError, resolve: (event) => event.error }),
  }),
});

export const GenerationCancelled = builder.objectRef<GenerationCancelledEvent>('GenerationCancelled').implement({
  description: 'Terminal: the generation was cancelled (cancelGeneration, a closed subscription, or shutdown).',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'generation-cancelled',
  fields: (t) => ({
    reason: t.exposeString('reason', { nullable: true }),
  }),
});

builder.queryField('generation', (t) =>
  t.field({
    type: Generation,
    nullable: true,
    description:
      'A generation by id; null when unknown. Past its retention time (GENERATION_RETENTION_MS) it is read from the database with its result (text, reasoning, tool calls, usage, images, error) but no events; null there only with DATABASE_URL=none. Errors: DATABASE_UNAVAILABLE.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { generations }) => generations.find(id),
  }),
);

export const GenerationKind = builder.enumType('GenerationKind', {
  description: 'What a generation makes: CHAT (text) or IMAGE.',
  values: { CHAT: { value: 'chat' }, IMAGE: { value: 'image' } } as const,
});

/** A page of `generations` and the records on it. */
interface GenerationConnectionShape {
  records: GenerationRecord[];
  hasNextPage: boolean;
}

export const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
  description: 'Where a page of a list ends (the Relay cursor connection specification).',
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage', { description: 'Whether more items follow: ask again with after: endCursor.' }),
    endCursor: t.exposeString('endCursor', { nullable: true, description: 'The cursor of the last item of this page; null when the page is empty.' }),
  }),
});

export const GenerationEdge = builder.objectRef<GenerationRecord>('GenerationEdge').implement({
  description: 'A generation in a list, with its cursor.',
  fields: (t) => ({
    cursor: t.string({ resolve: (record) => cursorOf(record) }),
    node: t.field({ type: Generation, resolve: (record) => record }),
  }),
});

export const GenerationConnection = builder.objectRef<GenerationConnectionShape>('GenerationConnection').implement({
  description: 'A page of generations, newest first.',
  fields: (t) => ({
    edges: t.field({ type: [GenerationEdge], resolve: (page) => page.records }),
    nodes: t.field({ type: [Generation], description: 'The generations of the edges, for clients that need no cursors.', resolve: (page) => page.records }),
    pageInfo: t.field({
      type: PageInfo,
      resolve: (page) => ({ hasNextPage: page.hasNextPage, endCursor: page.records.length > 0 ? cursorOf(page.records.at(-1)!) : null }),
    }),
  }),
});

builder.queryField('generations', (t) =>
  t.field({
    type: GenerationConnection,
    description:
      `The caller's generations (every generation when the server runs without API keys), newest first: running ones, retained ones (GENERATION_RETENTION_MS) and, with a database, every ended one stored there, so running work can always be found and cancelled. first: 1 to ${MAX_PAGE_SIZE}, default ${DEFAULT_PAGE_SIZE}; after: the endCursor of the previous page. Errors: BAD_USER_INPUT, DATABASE_UNAVAILABLE.`,
    args: {
      status: t.arg({ type: GenerationStatus }),
      kind: t.arg({ type: GenerationKind }),
      first: t.arg.int(),
      after: t.arg.string(),
    },
    resolve: (_root, { status, kind, first, after }, { generations }) =>
      generations.listGenerations({
        ...(status != null && { status }),
        ...(kind != null && { kind }),
        ...(first != null && { first }),
        ...(after != null && { after }),
      }),
  }),
);

builder.mutationField('cancelGeneration', (t) =>
  t.field({
    type: Generation,
    description: 'Cancels a running generation; returns it once its GenerationCancelled event is out. Errors: GENERATION_NOT_FOUND.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { generations }) => generations.cancel(id),
  }),
);
