/**
 * The wire shapes of an OpenAI-compatible upstream (`docs/protocols.md` §2), as zod schemas of
 * the fields the provider reads (extra fields pass): the streamed `chat.completion.chunk` with its
 * tool call pieces, reasoning, `usage` and in-band `error`, the `GET /models` list, and the
 * `POST /images/generations` reply. Built once: the chunk schema runs on every chunk of every
 * stream that is not a plain delta.
 */
import { z } from 'zod';

/** `usage` of the last chunk (only when `stream_options.include_usage` is sent). Any count may be missing. */
export const openAIUsageSchema = z.looseObject({
  prompt_tokens: z.number().nullish(),
  completion_tokens: z.number().nullish(),
  total_tokens: z.number().nullish(),
});

/** A parsed {@link openAIUsageSchema}: token counts, each possibly missing. */
export type OpenAIUsage = z.infer<typeof openAIUsageSchema>;

/**
 * One piece of a streamed tool call (`delta.tool_calls[]`, https://platform.openai.com/docs/api-reference/chat-streaming):
 * `index` numbers the call within the turn; `id`, `type: "function"` and `function.name` come with
 * its first piece, `function.arguments` (JSON text) in pieces to concatenate. Some servers leave
 * `index` out.
 */
export const openAIToolCallPieceSchema = z.looseObject({
  index: z.number().int().nonnegative().nullish(),
  id: z.string().nullish(),
  type: z.string().nullish(),
  function: z.looseObject({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
});

/** A parsed {@link openAIToolCallPieceSchema}. */
export type OpenAIToolCallPiece = z.infer<typeof openAIToolCallPieceSchema>;

/**
 * One `chat.completion.chunk`, reduced to the fields this provider reads; extra fields pass. A
 * delta's reasoning is `reasoning_content` (gpt4free, DeepSeek) or `reasoning` (OpenRouter, vLLM).
 */
export const openAIChunkSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        delta: z
          .looseObject({
            content: z.string().nullish(),
            reasoning_content: z.string().nullish(),
            reasoning: z.string().nullish(),
            tool_calls: z.array(openAIToolCallPieceSchema).nullish(),
          })
          .nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  usage: openAIUsageSchema.nullish(),
  /** An in-band error sent after the stream began: `{"error":{"message":…}}` (some servers send a string). */
  error: z.union([z.string(), z.looseObject({ message: z.string().nullish() })]).nullish(),
});

/** The common chunk: one choice with a text delta and/or a finish reason, no usage, no error. */
export interface OpenAIPlainDeltaChunk {
  choices: [OpenAIPlainChunkChoice];
  usage?: null;
  error?: null;
}

/** The choice of a plain chunk: a text delta and/or a finish reason (no reasoning, no tool calls). */
export interface OpenAIPlainChunkChoice {
  delta?: { content?: string | null } | null;
  finish_reason?: string | null;
}

/** One choice of a chunk the schema parsed: text, reasoning and tool call pieces, and/or a finish reason. */
export type OpenAIChunkChoice = NonNullable<z.infer<typeof openAIChunkSchema>['choices']>[number];

/** A plain (non-array) object. */
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Whether a chunk has the common shape ({@link OpenAIPlainDeltaChunk}), checked by hand: every
 * chunk this accepts, {@link openAIChunkSchema} accepts too and reads the same way, so the stream's
 * hot path (one check per token) skips the schema; anything else (usage, errors, several choices,
 * reasoning, tool calls, wrong types) goes through the schema, whose issues name what is wrong.
 * A null `reasoning_content` (DeepSeek sends one with every text piece) keeps a chunk plain.
 */
export function isPlainDeltaChunk(json: unknown): json is OpenAIPlainDeltaChunk {
  if (!isRecord(json) || json.usage != null || json.error != null) return false;
  const choices = json.choices;
  if (!Array.isArray(choices) || choices.length !== 1) return false;
  const choice: unknown = choices[0];
  if (!isRecord(choice)) return false;
  if (choice.finish_reason != null && typeof choice.finish_reason !== 'string') return false;
  const delta = choice.delta;
  if (delta == null) return true;
  return (
    isRecord(delta) &&
    (delta.content == null || typeof delta.content === 'string') &&
    delta.tool_calls == null &&
    delta.reasoning_content == null &&
    delta.reasoning == null
  );
}

/** `GET /models`: `{"data":[{"id":…}]}`; other fields (`object`, `created`, `owned_by`, …) pass. */
export const openAIModelListSchema = z.looseObject({
  data: z.array(z.looseObject({ id: z.string().min(1) })),
});

/** One image of an `/images/generations` reply: a `url`, a `b64_json`, or both; `revised_prompt` is optional. */
const generatedImageSchema = z
  .looseObject({
    url: z.string().min(1).nullish(),
    b64_json: z.string().min(1).nullish(),
    revised_prompt: z.string().nullish(),
  })
  .refine((image) => Boolean(image.url || image.b64_json), { message: 'an image has neither "url" nor "b64_json"' });

/** `POST /images/generations`: `{"created":…,"data":[…]}` with at least one image; other fields pass. */
export const openAIImageReplySchema = z.looseObject({
  created: z.number().nullish(),
  data: z.array(generatedImageSchema).min(1, 'the reply holds no images'),
});

/** A parsed {@link openAIImageReplySchema}. */
export type OpenAIImageReply = z.infer<typeof openAIImageReplySchema>;
