/**
 * Image generations: the input, `ImageGeneration`, `GeneratedImage`, the image events and their
 * union, `startImageGeneration`, and the `imageGenerationEvents` and `imageGeneration` subscriptions.
 * Resolvers only translate; the generation service does the work.
 */
import type {
  GeneratedImage as GeneratedImageShape,
  GenerationEvent,
  ImageGenerationCompletedEvent,
  ImageGenerationEvent as ImageGenerationEventShape,
  ImageGenerationProgressEvent,
  ImageGenerationStartedEvent,
} from '../generations/generation-events.js';
import type { ImageGenerationRecord } from '../generations/generation-records.js';
import { ASPECT_RATIOS } from '../providers/image-size.js';
import { builder } from './builder.js';
import {
  eventTypeName,
  Generation,
  GenerationCancelled,
  GenerationError,
  GenerationEventInterface,
  GenerationFailed,
  ProviderAttemptFailed,
} from './generation.js';

const ImageResponseFormat = builder.enumType('ImageResponseFormat', {
  description: 'URL (default): stored and served by this service under PUBLIC_BASE_URL/images/. B64_JSON: the bytes inline, nothing stored.',
  values: { URL: { value: 'url' }, B64_JSON: { value: 'b64_json' } } as const,
});

const ImageGenerationInput = builder.inputType('ImageGenerationInput', {
  fields: (t) => ({
    prompt: t.string({ required: true, description: 'What to draw; not empty.' }),
    model: t.string({
      description: 'A model id (e.g. flux-1-schnell), provider:model, an alias (e.g. flux), or a provider id; empty or absent = the configured default.',
    }),
    provider: t.string({
      description:
        'A provider id (e.g. hf-space, pollinations) or gpt4free provider name (e.g. StabilityAI_SD35Large), in any case, or several separated by spaces, tried in that order.',
    }),
    providers: t.stringList({ description: 'Provider ids or gpt4free provider names tried in this order (the list form of provider).' }),
    n: t.int({ description: 'Number of images, 1..4 (default 1).' }),
    width: t.int({ description: 'Pixels, 32..2048; give width/height or aspectRatio.' }),
    height: t.int({ description: 'Pixels, 32..2048.' }),
    aspectRatio: t.string({ description: `One of ${Object.keys(ASPECT_RATIOS).join(', ')}; the provider picks the pixel size.` }),
    seed: t.int({ description: 'Seed for reproducible images, where the provider supports it.' }),
    numInferenceSteps: t.int({ description: 'Diffusion steps, 1..100, where the provider supports it.' }),
    negativePrompt: t.string({ description: 'What to avoid, where the provider supports it.' }),
    responseFormat: t.field({ type: ImageResponseFormat, description: 'URL (default) or B64_JSON.' }),
    apiKey: t.string({
      description:
        "The provider's API key for this request only: the first provider tried gets it instead of its configured key, and no other provider is tried (the key must not reach another upstream). Never stored, published or logged.",
    }),
  }),
});

const GeneratedImage = builder.objectRef<GeneratedImageShape>('GeneratedImage').implement({
  description: 'One generated image: a URL served by this service (URL format) or the bytes as base64 (B64_JSON).',
  fields: (t) => ({
    url: t.exposeString('url', { nullable: true }),
    b64Json: t.exposeString('b64Json', { nullable: true }),
    mimeType: t.exposeString('mimeType', { description: 'From the bytes, e.g. image/png.' }),
    width: t.exposeInt('width', { nullable: true }),
    height: t.exposeInt('height', { nullable: true }),
    seed: t.exposeInt('seed', { nullable: true }),
    revisedPrompt: t.exposeString('revisedPrompt', { nullable: true }),
    sourceUrl: t.exposeString('sourceUrl', { nullable: true, description: "The provider's own URL of the image, when it gave one." }),
  }),
});

export const ImageGeneration = builder.objectRef<ImageGenerationRecord>('ImageGeneration').implement({
  description: 'An image generation; images are filled when it completes.',
  interfaces: [Generation],
  isTypeOf: (record) => (record as ImageGenerationRecord).kind === 'image',
  fields: (t) => ({
    prompt: t.exposeString('prompt'),
    images: t.field({ type: [GeneratedImage], resolve: (record) => record.images }),
    error: t.field({ type: GenerationError, nullable: true, resolve: (record) => record.error }),
  }),
});

const ImageGenerationStarted = builder.objectRef<ImageGenerationStartedEvent>('ImageGenerationStarted').implement({
  description: 'The provider and model serving the generation: the first event, and again after each ProviderAttemptFailed.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'image-generation-started',
  fields: (t) => ({
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
  }),
});

const ImageGenerationProgress = builder.objectRef<ImageGenerationProgressEvent>('ImageGenerationProgress').implement({
  description: 'What the provider says while it works: a message, progress in 0..1 when it knows, the queue position when queued.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'image-generation-progress',
  fields: (t) => ({
    message: t.exposeString('message', { nullable: true }),
    progress: t.exposeFloat('progress', { nullable: true }),
    queuePosition: t.exposeInt('queuePosition', { nullable: true }),
  }),
});

const ImageGenerationCompleted = builder.objectRef<ImageGenerationCompletedEvent>('ImageGenerationCompleted').implement({
  description: 'Terminal: the images.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'image-generation-completed',
  fields: (t) => ({
    images: t.field({ type: [GeneratedImage], resolve: (event) => event.images }),
  }),
});

const ImageGenerationEvent = builder.unionType('ImageGenerationEvent', {
  description: 'An event of an image generation; every member implements GenerationEvent.',
  types: [ImageGenerationStarted, ImageGenerationProgress, ImageGenerationCompleted, ProviderAttemptFailed, GenerationFailed, GenerationCancelled],
  resolveType: eventTypeName,
});

builder.mutationField('startImageGeneration', (t) =>
  t.field({
    type: ImageGeneration,
    nullable: true,
    description:
      'Starts an image generation and returns at once (status RUNNING). Follow it with imageGenerationEvents. Null, with an error at its path, when refused: BAD_USER_INPUT, MODEL_NOT_FOUND, PROVIDER_NOT_FOUND, RATE_LIMITED (each start of a mutation is admitted or refused on its own).',
    args: { input: t.arg({ type: ImageGenerationInput, required: true }) },
    resolve: (_root, { input }, { generations }) => generations.startImages(input),
  }),
);

builder.subscriptionField('imageGenerationEvents', (t) =>
  t.field({
    type: ImageGenerationEvent,
    description:
      'Replays the events with sequence > after (default: all), then follows live ones; completes after the terminal event. Errors: GENERATION_NOT_FOUND, BAD_USER_INPUT (a chat generation), EVENTS_EXPIRED (events after `after` are gone from the log), EVENT_LOG_UNAVAILABLE (Redis unreachable).',
    args: {
      generationId: t.arg.id({ required: true }),
      after: t.arg.int({ description: 'Last sequence already seen; 0 or absent = from the start.' }),
    },
    subscribe: (_root, { generationId, after }, { generations }) => generations.subscribe(generationId, after ?? 0, 'image'),
    resolve: (event: GenerationEvent) => event as ImageGenerationEventShape,
  }),
);

builder.subscriptionField('imageGeneration', (t) =>
  t.field({
    type: ImageGenerationEvent,
    description: 'Starts an image generation and streams its events in one operation; closing the subscription cancels the generation.',
    args: { input: t.arg({ type: ImageGenerationInput, required: true }) },
    subscribe: (_root, { input }, { generations }) => generations.startImageStream(input),
    resolve: (event: GenerationEvent) => event as ImageGenerationEventShape,
  }),
);
