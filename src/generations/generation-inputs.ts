/**
 * The validation rules of generation requests, shared by every transport (GraphQL, REST).
 * Bad input becomes `GatewayError('BAD_USER_INPUT')` naming the field, before anything starts.
 */
import { z } from 'zod';
import { ASPECT_RATIOS, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE } from '../providers/image-size.js';
import { GatewayError } from './gateway-error.js';
import type { TraceCarrier } from './generation-tracer.js';

/** An image by URL: `https` (or `http`), or a `data:image/…` URI. */
const imageUrlSchema = z
  .string({ error: 'imageUrl must be a string' })
  .refine((url) => /^https?:\/\//i.test(url) || /^data:image\/[a-z0-9.+-]+;base64,/i.test(url), 'imageUrl must be an http(s) URL or a data:image/…;base64 URI');

const contentPartSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text'), text: z.string({ error: 'text parts need text' }) }),
    z.object({ type: z.literal('image-url'), imageUrl: imageUrlSchema, detail: z.enum(['auto', 'low', 'high']).nullish() }),
  ],
  { error: 'parts: type must be TEXT or IMAGE_URL' },
);

const toolCallSchema = z.object({
  id: z.string().min(1, 'tool call ids must not be empty'),
  name: z.string().min(1, 'tool call names must not be empty'),
  arguments: z.string({ error: 'arguments must be JSON text' }),
});

/** A message: `content` (text), and by role `parts` (user: text and images), `toolCalls` (assistant), `toolCallId` (tool). */
const chatMessageSchema = z
  .object({
    role: z.enum(['system', 'user', 'assistant', 'tool'], { error: 'role must be system, user, assistant or tool' }),
    content: z.string({ error: 'content must be a string' }).nullish(),
    parts: z.array(contentPartSchema).min(1, 'parts must not be empty').nullish(),
    toolCalls: z.array(toolCallSchema).min(1, 'toolCalls must not be empty').nullish(),
    toolCallId: z.string().min(1, 'toolCallId must not be empty').nullish(),
  })
  .superRefine((message, context) => {
    const problem = (path: string, text: string) => context.addIssue({ code: 'custom', path: [path], message: text });
    if (message.parts && message.role !== 'user') problem('parts', 'only user messages have parts');
    if (message.toolCalls && message.role !== 'assistant') problem('toolCalls', 'only assistant messages have toolCalls');
    if (message.role === 'tool' && !message.toolCallId) problem('toolCallId', 'a tool message needs the toolCallId it answers');
    if (message.toolCallId && message.role !== 'tool') problem('toolCallId', 'only tool messages have a toolCallId');
    if (message.content == null && !message.parts && !message.toolCalls) problem('content', 'content must be a string');
  });

/** A tool the model may call; its name as OpenAI allows it. */
const toolSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'tool names are 1 to 64 letters, digits, "_" or "-"'),
  description: z.string().max(8_000, 'tool descriptions are at most 8000 characters').nullish(),
  parameters: z.record(z.string(), z.unknown(), { error: 'parameters must be a JSON Schema object' }).nullish(),
  strict: z.boolean().nullish(),
});

/** A chat request: messages and sampling settings; `null` and `undefined` both mean "not set". */
export const chatCompletionInputSchema = z.object({
  messages: z.array(chatMessageSchema).min(1, 'messages must contain at least one message'),
  model: z.string().nullish(),
  provider: z.string().nullish(),
  providers: z.array(z.string().min(1, 'provider ids must not be empty')).nullish(),
  conversationId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'conversationId must be 1 to 128 letters, digits, ".", "_", ":" or "-"')
    .nullish(),
  temperature: z.number().min(0, 'temperature must be between 0 and 2').max(2, 'temperature must be between 0 and 2').nullish(),
  topP: z.number().gt(0, 'topP must be greater than 0 and at most 1').max(1, 'topP must be greater than 0 and at most 1').nullish(),
  maxTokens: z.number().int('maxTokens must be a whole number').positive('maxTokens must be greater than 0').nullish(),
  stop: z.array(z.string().min(1, 'stop sequences must not be empty')).max(16, 'at most 16 stop sequences').nullish(),
  seed: z.number().int('seed must be a whole number').nullish(),
  tools: z.array(toolSchema).max(128, 'at most 128 tools').nullish(),
  /** `mode` (auto, none, required) or the `name` of the one tool the model must call. */
  toolChoice: z
    .object({ mode: z.enum(['auto', 'none', 'required']).nullish(), name: z.string().min(1).nullish() })
    .refine((choice) => (choice.mode == null) !== (choice.name == null), 'toolChoice: give either mode or name')
    .nullish(),
  parallelToolCalls: z.boolean().nullish(),
  responseFormat: z
    .object({
      type: z.enum(['text', 'json-object', 'json-schema'], { error: 'responseFormat.type must be TEXT, JSON_OBJECT or JSON_SCHEMA' }),
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'responseFormat.name is 1 to 64 letters, digits, "_" or "-"').nullish(),
      jsonSchema: z.record(z.string(), z.unknown(), { error: 'jsonSchema must be a JSON Schema object' }).nullish(),
      description: z.string().max(8_000, 'responseFormat.description is at most 8000 characters').nullish(),
      strict: z.boolean().nullish(),
    })
    .refine((format) => format.type !== 'json-schema' || format.jsonSchema != null, { message: 'a JSON_SCHEMA responseFormat needs its jsonSchema', path: ['jsonSchema'] })
    .nullish(),
  reasoningEffort: z.enum(['low', 'medium', 'high'], { error: 'reasoningEffort must be LOW, MEDIUM or HIGH' }).nullish(),
  /** The provider's API key for this request only (used instead of the configured one); never stored, published or logged. */
  apiKey: z.string().min(1, 'apiKey must not be empty').max(4096, 'apiKey must be at most 4096 characters').nullish(),
});

/** A chat request as transports hand it over. */
export type ChatCompletionInput = z.input<typeof chatCompletionInputSchema>;

const side = (name: string) =>
  z
    .number()
    .int(`${name} must be a whole number of pixels`)
    .min(MIN_IMAGE_SIDE, `${name} must be between ${MIN_IMAGE_SIDE} and ${MAX_IMAGE_SIDE} pixels`)
    .max(MAX_IMAGE_SIDE, `${name} must be between ${MIN_IMAGE_SIDE} and ${MAX_IMAGE_SIDE} pixels`)
    .nullish();

/**
 * Where a start came from: for observers (the log line `generation started` names it), the id of
 * the HTTP request that started the generation (`x-request-id`), absent for graphql-ws operations
 * and starts from code; and who started it.
 */
export interface GenerationOrigin {
  requestId?: string;
  /** With tracing on: the trace context of the HTTP request's span, the parent of the generation's span. */
  trace?: Readonly<TraceCarrier>;
  /** The caller that starts it (`Caller.id`): kept as the record's `owner`, so the caller can list its generations. */
  callerId?: string;
  /**
   * The models and providers the caller may use (a virtual key's `allowedModels` and
   * `allowedProviders`): candidates outside them are dropped before anything runs, so fallback never
   * tries one; when none is left the start is refused with `FORBIDDEN`. Absent = any.
   */
  restriction?: CandidateRestriction;
  /**
   * The id under which the caller's admission reserved tokens for this start (the security layer's
   * tokens-per-minute and budget checks): observers see it in `generationStarted` and settle the
   * reservation with the real usage when the generation ends.
   */
  reservationId?: string;
}

/** Models and providers a caller may use; an absent list allows any (see `candidate-restriction.ts`). */
export interface CandidateRestriction {
  /** Model ids (any provider), `provider:model`, or the names (aliases) requests use. */
  allowedModels?: readonly string[];
  /** Provider ids, in any case. */
  allowedProviders?: readonly string[];
}

/** How images come back: stored and served by this service (`url`), or inline (`b64_json`). */
export type ImageResponseFormat = 'url' | 'b64_json';

/** An image request; `n` defaults to 1 and `responseFormat` to `url`. */
export const imageGenerationInputSchema = z
  .object({
    prompt: z.string({ error: 'prompt must be a string' }).trim().min(1, 'prompt must not be empty').max(8_000, 'prompt must be at most 8000 characters'),
    model: z.string().nullish(),
    provider: z.string().nullish(),
    providers: z.array(z.string().min(1, 'provider ids must not be empty')).nullish(),
    n: z.number().int('n must be a whole number').min(1, 'n must be between 1 and 4').max(4, 'n must be between 1 and 4').nullish(),
    width: side('width'),
    height: side('height'),
    aspectRatio: z
      .string()
      .refine((ratio) => ratio in ASPECT_RATIOS, `aspectRatio must be one of ${Object.keys(ASPECT_RATIOS).join(', ')}`)
      .nullish(),
    seed: z.number().int('seed must be a whole number').nullish(),
    numInferenceSteps: z.number().int().min(1, 'numInferenceSteps must be between 1 and 100').max(100, 'numInferenceSteps must be between 1 and 100').nullish(),
    negativePrompt: z.string().max(8_000, 'negativePrompt must be at most 8000 characters').nullish(),
    responseFormat: z.enum(['url', 'b64_json'], { error: 'responseFormat must be url or b64_json' }).nullish(),
    /** The provider's API key for this request only (used instead of the configured one); never stored, published or logged. */
    apiKey: z.string().min(1, 'apiKey must not be empty').max(4096, 'apiKey must be at most 4096 characters').nullish(),
  })
  .refine((input) => !(input.aspectRatio && (input.width != null || input.height != null)), {
    message: 'give width and height, or aspectRatio, not both',
    path: ['aspectRatio'],
  });

/** An image request as transports hand it over. */
export type ImageGenerationInput = z.input<typeof imageGenerationInputSchema>;

/**
 * Parses a request with its schema.
 * @throws GatewayError `BAD_USER_INPUT` with `field: message` of the first problem.
 */
export function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown): z.output<Schema> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new GatewayError('BAD_USER_INPUT', `${where}${issue.message}`);
}

/**
 * Size limits of generation requests, from the configuration (`MAX_PROMPT_CHARACTERS`,
 * `MAX_MESSAGES`, `MAX_MESSAGE_CHARACTERS`). Counts are characters as JavaScript counts them
 * (UTF-16 code units). The image schema above also keeps its own ceiling of 8000 characters.
 */
export interface InputLimits {
  /** Longest image `prompt` and `negativePrompt`, characters. */
  maxPromptCharacters: number;
  /** Most messages in one chat request. */
  maxMessages: number;
  /** Longest `content` of one chat message, characters. */
  maxMessageCharacters: number;
}

/**
 * Checks a chat request against the size limits (before anything else looks at it).
 * @throws GatewayError `BAD_USER_INPUT` naming the field: `messages: at most N messages`, or
 *   `messages.I.content: content must be at most N characters`.
 */
export function assertChatInputWithinLimits(input: ChatCompletionInput, limits: InputLimits): void {
  const messages: unknown = input.messages;
  if (!Array.isArray(messages)) return; // the schema reports it
  if (messages.length > limits.maxMessages) {
    throw new GatewayError('BAD_USER_INPUT', `messages: at most ${limits.maxMessages} messages per request (got ${messages.length})`);
  }
  for (const [index, message] of messages.entries()) {
    const content: unknown = (message as { content?: unknown } | null)?.content;
    if (typeof content === 'string' && content.length > limits.maxMessageCharacters) {
      throw new GatewayError('BAD_USER_INPUT', `messages.${index}.content: content must be at most ${limits.maxMessageCharacters} characters`);
    }
  }
}

/**
 * Checks an image request against the size limits.
 * @throws GatewayError `BAD_USER_INPUT`: `prompt: prompt must be at most N characters` (or `negativePrompt: …`).
 */
export function assertImageInputWithinLimits(input: ImageGenerationInput, limits: InputLimits): void {
  for (const field of ['prompt', 'negativePrompt'] as const) {
    const value: unknown = input[field];
    if (typeof value === 'string' && value.length > limits.maxPromptCharacters) {
      throw new GatewayError('BAD_USER_INPUT', `${field}: ${field} must be at most ${limits.maxPromptCharacters} characters`);
    }
  }
}
