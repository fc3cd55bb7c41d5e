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
import { builder } from './builder.js';
import './scalars.js';

/** GraphQL type name of each event, by its `type`. */
const eventTypeNames: Record<GenerationEvent['type'], string> = {
  'chat-completion-started': 'ChatCompletionStarted',
  'chat-token-delta': 'ChatTokenDelta',
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
    description: 'A generation by id; null when unknown or past its retention time.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { generations }) => generations.find(id),
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
