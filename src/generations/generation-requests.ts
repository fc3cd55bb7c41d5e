/**
 * A start request turned into what runs: the input validated, the candidates resolved (provider
 * and model, in order), the provider request built (a conversation's history put in front, the
 * token limits applied), and the generation's first record and event. Nothing runs here.
 */
import type { ConversationLimits, ConversationStore } from '../conversations/conversation-store.js';
import { ModelResolutionError, type ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.js';
import type {
  ChatContentPart,
  ChatFeature,
  ChatMessage,
  ChatProvider,
  ChatRequest,
  ChatResponseFormat,
  ChatTool,
  ImageProvider,
  ImageRequest,
} from '../providers/provider.js';
import type { z } from 'zod';
import { restrictCandidates } from './candidate-restriction.js';
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
 * no fallback may hand it to another upstream. `origin.callerId` becomes the record's owner;
 * candidates outside `origin.restriction` are dropped (see `candidate-restriction.ts`).
 * @throws GatewayError `BAD_USER_INPUT` (a bad field, `maxTokens` over the limit, new messages over
 *   the conversation limits), `MODEL_NOT_FOUND`, `PROVIDER_NOT_FOUND`, or `FORBIDDEN` (no candidate
 *   is allowed to the caller).
 */
export async function prepareChat(input: ChatCompletionInput, origin: GenerationOrigin, preparation: ChatPreparation): Promise<PreparedChat> {
  const values = parseInput(chatCompletionInputSchema, input);
  const maxTokens = maxTokensOf(values.maxTokens, preparation.tokenLimits);
  const conversationId = values.conversationId ?? undefined;
  const { messages, newMessages } = await withHistory(conversationId, values.messages.map(toChatMessage), preparation);
  const features = chatFeaturesOf(values, messages);
  const resolvedCandidates = restrictCandidates(await resolved(preparation.registry.chatCandidates(values)), origin.restriction, values.model?.trim() || undefined);
  const candidates = (await withFeatures(resolvedCandidates, features)).slice(0, values.apiKey ? 1 : undefined);
  const first = candidates[0]!;
  const request: ChatRequest = {
    model: first.model,
    messages,
    ...(messages.length > newMessages.length && { historyLength: messages.length - newMessages.length }),
    ...(conversationId !== undefined && { conversationId }),
    ...(values.temperature != null && { temperature: values.temperature }),
    ...(values.topP != null && { topP: values.topP }),
    ...(maxTokens !== undefined && { maxTokens }),
    ...(values.stop != null && values.stop.length > 0 && { stop: values.stop }),
    ...(values.seed != null && { seed: values.seed }),
    ...(values.tools != null && values.tools.length > 0 && { tools: values.tools.map(toChatTool) }),
    ...(values.toolChoice != null && { toolChoice: values.toolChoice.name != null ? { name: values.toolChoice.name } : values.toolChoice.mode! }),
    ...(values.parallelToolCalls != null && { parallelToolCalls: values.parallelToolCalls }),
    ...(values.responseFormat != null && { responseFormat: toResponseFormat(values.responseFormat) }),
    ...(values.reasoningEffort != null && { reasoningEffort: values.reasoningEffort }),
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
 * one provider only; `origin.restriction` applies as for chats).
 * @throws GatewayError `BAD_USER_INPUT`, `MODEL_NOT_FOUND`, `PROVIDER_NOT_FOUND` or `FORBIDDEN`.
 */
export async function prepareImages(input: ImageGenerationInput, origin: GenerationOrigin, registry: ProviderRegistry): Promise<PreparedImages> {
  const values = parseInput(imageGenerationInputSchema, input);
  const allowed = restrictCandidates(await resolved(registry.imageCandidates(values)), origin.restriction, values.model?.trim() || undefined);
  const candidates = allowed.slice(0, values.apiKey ? 1 : undefined);
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

type ChatInputValues = z.output<typeof chatCompletionInputSchema>;
type ChatInputMessage = ChatInputValues['messages'][number];

/**
 * A message of the input as the provider contract has it: text parts joined into `content`, kept
 * as `parts` (the content first) only when there is an image among them.
 */
function toChatMessage(message: ChatInputMessage): ChatMessage {
  const given: ChatContentPart[] = (message.parts ?? []).map((part) =>
    part.type === 'text' ? { type: 'text', text: part.text } : { type: 'image-url', url: part.imageUrl, ...(part.detail != null && { detail: part.detail }) },
  );
  const parts: ChatContentPart[] = message.content ? [{ type: 'text', text: message.content }, ...given] : given;
  const content = parts.map((part) => (part.type === 'text' ? part.text : '')).join('');
  return {
    role: message.role,
    content,
    ...(parts.some((part) => part.type === 'image-url') && { parts }),
    ...(message.toolCalls != null && { toolCalls: message.toolCalls.map(({ id, name, arguments: text }) => ({ id, name, arguments: text })) }),
    ...(message.toolCallId != null && { toolCallId: message.toolCallId }),
  };
}

function toChatTool(tool: NonNullable<ChatInputValues['tools']>[number]): ChatTool {
  return {
    name: tool.name,
    ...(tool.description != null && { description: tool.description }),
    ...(tool.parameters != null && { parameters: tool.parameters }),
    ...(tool.strict != null && { strict: tool.strict }),
  };
}

function toResponseFormat(format: NonNullable<ChatInputValues['responseFormat']>): ChatResponseFormat {
  if (format.type !== 'json-schema') return { type: format.type };
  return {
    type: 'json-schema',
    schema: format.jsonSchema!,
    ...(format.name != null && { name: format.name }),
    ...(format.description != null && { description: format.description }),
    ...(format.strict != null && { strict: format.strict }),
  };
}

/** What a chat request needs of its model beyond chat: tools to call, images to see, a JSON reply, a reasoning effort. */
function chatFeaturesOf(values: ChatInputValues, messages: ChatMessage[]): ChatFeature[] {
  const features: ChatFeature[] = [];
  if (values.tools != null && values.tools.length > 0 && values.toolChoice?.mode !== 'none') features.push('tools');
  if (messages.some((message) => message.parts?.some((part) => part.type === 'image-url'))) features.push('vision');
  if (values.responseFormat != null && values.responseFormat.type !== 'text') features.push('json-schema');
  if (values.reasoningEffort != null) features.push('reasoning');
  return features;
}

/**
 * The candidates whose model can do every feature the request needs (a model a provider does not
 * list stays: its upstream decides). Never silently degraded: when none can, the request is refused.
 * @throws GatewayError `UNSUPPORTED_INPUT` naming what no candidate supports.
 */
async function withFeatures<P extends ChatProvider>(candidates: Array<ResolvedModel<P>>, features: ChatFeature[]): Promise<Array<ResolvedModel<P>>> {
  if (features.length === 0) return candidates;
  const missing = new Map<string, ChatFeature[]>();
  const able: Array<ResolvedModel<P>> = [];
  for (const candidate of candidates) {
    const descriptor = (await candidate.provider.listModels()).find((model) => model.id === candidate.model);
    const lacks = descriptor ? features.filter((feature) => !descriptor.capabilities.includes(feature)) : [];
    if (lacks.length === 0) able.push(candidate);
    else missing.set(`${candidate.provider.id}:${candidate.model}`, lacks);
  }
  if (able.length > 0) return able;
  const described = [...missing].map(([model, lacks]) => `${model} lacks ${lacks.join(', ')}`).join('; ');
  throw new GatewayError('UNSUPPORTED_INPUT', `No model can serve this request (it needs ${features.join(', ')}): ${described}.`);
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
  const history: ChatMessage[] = stored.map(({ role, content, toolCalls, toolCallId }) => ({
    role,
    content,
    ...(toolCalls && { toolCalls }),
    ...(toolCallId !== undefined && { toolCallId }),
  }));
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
