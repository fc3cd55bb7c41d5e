/**
 * A start request turned into what runs: the input validated, the candidates resolved (provider
 * and model, in order), the provider request built (a conversation's history put in front, the
 * token limits applied), and the generation's first record and event. Nothing runs here.
 */
import type { ConversationLimits, ConversationStore } from '../conversations/conversation-store.js';
import { ModelResolutionError, type ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.js';
import type { ChatMessage, ChatProvider, ChatRequest, ImageProvider, ImageRequest } from '../providers/provider.js';
import { GatewayError } from './gateway-error.js';
import type { UnnumberedGenerationEvent } from './generation-events.js';
import { newGenerationId } from './generation-ids.js';
import {
  chatCompletionInputSchema,
  imageGenerationInputSchema,
  parseInput,
  type ChatCompletionInput,
  type GenerationOrigin,
  type ImageGenerationInput,
  type ImageResponseFormat,
} from './generation-inputs.js';
import type { ChatGenerationRecord, ImageGenerationRecord } from './generation-records.js';

/**
 * Token limits of chat requests (`MAX_TOKENS_LIMIT`, `DEFAULT_MAX_TOKENS`), tokens: a request's
 * `maxTokens` above `maxTokensLimit` is refused; a request without one gets `defaultMaxTokens`
 * when set (otherwise the provider's own bound applies: a local model stops when its context is
 * full, an upstream uses its own default).
 */
export interface TokenLimits {
  maxTokensLimit?: number;
  defaultMaxTokens?: number;
}

/** What preparing a chat needs. */
export interface ChatPreparation {
  registry: ProviderRegistry;
  conversations: ConversationStore;
  /** Limits of a conversation (the new messages of one request must fit them); absent = none. */
  conversationLimits?: Pick<ConversationLimits, 'maxMessages' | 'maxCharacters'>;
  tokenLimits?: TokenLimits;
}

/** A chat ready to run (or queue). */
export interface PreparedChat {
  record: ChatGenerationRecord;
  /** Event 1. */
  started: UnnumberedGenerationEvent;
  candidates: Array<ResolvedModel<ChatProvider>>;
  /** The request for the first candidate. */
  request: ChatRequest;
  /** The messages this request adds to its conversation. */
  newMessages: ChatMessage[];
  /** Whether the request carries the caller's own provider key (then it runs here, never through a queue). */
  hasOwnKey: boolean;
}

/** An image generation ready to run (or queue). */
export interface PreparedImages {
  record: ImageGenerationRecord;
  started: UnnumberedGenerationEvent;
  candidates: Array<ResolvedModel<ImageProvider>>;
  request: ImageRequest;
  responseFormat: ImageResponseFormat;
  hasOwnKey: boolean;
}

/**
 * Validates a chat request and resolves it. A per-request provider key goes to one provider only:
 * no fallback may hand it to another upstream. `origin.callerId` becomes the record's owner.
 * @throws GatewayError `BAD_USER_INPUT` (a bad field, `maxTokens` over the limit, new messages over
 *   the conversation limits), `MODEL_NOT_FOUND` or `PROVIDER_NOT_FOUND`.
 */
export async function prepareChat(input: ChatCompletionInput, origin: GenerationOrigin, preparation: ChatPreparation): Promise<PreparedChat> {
  const values = parseInput(chatCompletionInputSchema, input);
  const maxTokens = maxTokensOf(values.maxTokens, preparation.tokenLimits);
  const candidates = (await resolved(preparation.registry.chatCandidates(values))).slice(0, values.apiKey ? 1 : undefined);
  const conversationId = values.conversationId ?? undefined;
  const { messages, newMessages } = await withHistory(conversationId, values.messages, preparation);
  const first = candidates[0]!;
  const request: ChatRequest = {
    model: first.model,
    messages,
    ...(messages.length > newMessages.length && { historyLength: messages.length - newMessages.length }),
    ...(values.temperature != null && { temperature: values.temperature }),
    ...(values.topP != null && { topP: values.topP }),
    ...(maxTokens !== undefined && { maxTokens }),
    ...(values.stop != null && values.stop.length > 0 && { stop: values.stop }),
    ...(values.seed != null && { seed: values.seed }),
    ...(values.apiKey && { apiKey: values.apiKey }),
  };
  const record: ChatGenerationRecord = {
    kind: 'chat',
    id: newGenerationId(),
    status: 'running',
    provider: first.provider.id,
    model: first.model,
    createdAt: new Date(),
    text: '',
    lastSequence: 0,
    ...(conversationId !== undefined && { conversationId }),
    ...(origin.callerId !== undefined && { owner: origin.callerId }),
  };
  const started: UnnumberedGenerationEvent = { type: 'chat-completion-started', provider: first.provider.id, model: first.model };
  return { record, started, candidates, request, newMessages, hasOwnKey: Boolean(values.apiKey) };
}

/**
 * Validates an image request and resolves it (a per-request provider key, as for chats, goes to
 * one provider only).
 * @throws GatewayError `BAD_USER_INPUT`, `MODEL_NOT_FOUND` or `PROVIDER_NOT_FOUND`.
 */
export async function prepareImages(input: ImageGenerationInput, origin: GenerationOrigin, registry: ProviderRegistry): Promise<PreparedImages> {
  const values = parseInput(imageGenerationInputSchema, input);
  const candidates = (await resolved(registry.imageCandidates(values))).slice(0, values.apiKey ? 1 : undefined);
  const { provider, model } = candidates[0]!;
  const request: ImageRequest = {
    model,
    prompt: values.prompt,
    n: values.n ?? 1,
    ...(values.width != null && { width: values.width }),
    ...(values.height != null && { height: values.height }),
    ...(values.aspectRatio != null && { aspectRatio: values.aspectRatio }),
    ...(values.seed != null && { seed: values.seed }),
    ...(values.numInferenceSteps != null && { numInferenceSteps: values.numInferenceSteps }),
    ...(values.negativePrompt != null && values.negativePrompt !== '' && { negativePrompt: values.negativePrompt }),
    ...(values.apiKey && { apiKey: values.apiKey }),
  };
  const record: ImageGenerationRecord = {
    kind: 'image',
    id: newGenerationId(),
    status: 'running',
    provider: provider.id,
    model,
    createdAt: new Date(),
    prompt: values.prompt,
    images: [],
    lastSequence: 0,
    ...(origin.callerId !== undefined && { owner: origin.callerId }),
  };
  const started: UnnumberedGenerationEvent = { type: 'image-generation-started', provider: provider.id, model };
  return { record, started, candidates, request, responseFormat: values.responseFormat ?? 'url', hasOwnKey: Boolean(values.apiKey) };
}

/** The candidates, or the registry's refusal as the GatewayError transports answer (`MODEL_NOT_FOUND`, `PROVIDER_NOT_FOUND`). */
async function resolved<Candidates>(candidates: Promise<Candidates>): Promise<Candidates> {
  try {
    return await candidates;
  } catch (error) {
    if (error instanceof ModelResolutionError) throw new GatewayError(error.code, error.message);
    throw error;
  }
}

/**
 * The token limit a chat request runs with: its own (at most `maxTokensLimit`), else `defaultMaxTokens`, else none.
 * @throws GatewayError `BAD_USER_INPUT` naming the limit when the request asks for more than `maxTokensLimit`.
 */
function maxTokensOf(requested: number | null | undefined, limits: TokenLimits = {}): number | undefined {
  if (requested == null) return limits.defaultMaxTokens;
  if (limits.maxTokensLimit !== undefined && requested > limits.maxTokensLimit) {
    throw new GatewayError('BAD_USER_INPUT', `maxTokens: must be at most ${limits.maxTokensLimit} (MAX_TOKENS_LIMIT of this server)`);
  }
  return requested;
}

/**
 * The messages to send for a turn of a conversation, and the ones that are new to it. A request
 * that repeats the stored history (as OpenAI clients do) is taken as it is; one that sends only the
 * new messages (as gpt4free clients do) gets the history put in front.
 * @throws GatewayError `BAD_USER_INPUT` when the new messages alone exceed the conversation limits.
 */
async function withHistory(
  conversationId: string | undefined,
  messages: ChatMessage[],
  preparation: ChatPreparation,
): Promise<{ messages: ChatMessage[]; newMessages: ChatMessage[] }> {
  if (conversationId === undefined) return { messages, newMessages: messages };
  const stored = (await preparation.conversations.get(conversationId))?.messages ?? [];
  const history = stored.map(({ role, content }) => ({ role, content }));
  const repeatsHistory =
    history.length > 0 &&
    messages.length > history.length &&
    history.every((message, index) => message.role === messages[index]!.role && message.content === messages[index]!.content);
  const newMessages = repeatsHistory ? messages.slice(history.length) : messages;
  const limits = preparation.conversationLimits;
  if (limits) {
    const characters = newMessages.reduce((sum, message) => sum + message.content.length, 0);
    if (newMessages.length > limits.maxMessages || characters > limits.maxCharacters) {
      throw new GatewayError(
        'BAD_USER_INPUT',
        `messages: too long for a conversation (at most ${limits.maxMessages} messages and ${limits.maxCharacters} characters)`,
      );
    }
  }
  return { messages: [...history, ...newMessages], newMessages };
}
