/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
export type ChatCompletionInput = {
  /** The provider's API key for this request only: the first provider tried gets it instead of its configured key, and no other provider is tried (the key must not reach another upstream). Never stored, published or logged. */
  apiKey?: string | null | undefined;
  /** Continue (or start) a conversation the server keeps: send only the new message(s); the provider receives the whole history. */
  conversationId?: string | number | null | undefined;
  /** Upper bound on generated tokens, 1 to the server's MAX_TOKENS_LIMIT. Unset: the server's DEFAULT_MAX_TOKENS when configured, else the provider's own bound (a local model stops when its context is full). */
  maxTokens?: number | null | undefined;
  /** At least one message. */
  messages: Array<ChatMessageInput>;
  /** A model id, provider:model, an alias, or a provider id (its first model); empty or absent = the configured default. */
  model?: string | null | undefined;
  /** Whether the model may make several tool calls in one turn. */
  parallelToolCalls?: boolean | null | undefined;
  /** A provider id or gpt4free provider name (e.g. PollinationsAI), in any case, or several separated by spaces, tried in that order; absent = every provider that serves the model. */
  provider?: string | null | undefined;
  /** Provider ids or gpt4free provider names tried in this order (the list form of provider). */
  providers?: Array<string> | null | undefined;
  /** How much a reasoning model reasons (needs the REASONING capability). */
  reasoningEffort?: ReasoningEffort | null | undefined;
  responseFormat?: ChatResponseFormatInput | null | undefined;
  /** Seed for reproducible sampling, where the provider supports it. */
  seed?: number | null | undefined;
  /** Up to 16 strings that end the generation. */
  stop?: Array<string> | null | undefined;
  /** Sampling temperature, 0..2. */
  temperature?: number | null | undefined;
  toolChoice?: ChatToolChoiceInput | null | undefined;
  /** Tools the model may call (at most 128; needs the TOOLS capability). Calls stream as ChatToolCallDelta. */
  tools?: Array<ChatToolInput> | null | undefined;
  /** Nucleus sampling mass, greater than 0 and at most 1. */
  topP?: number | null | undefined;
};

/** Part of a user message: text, or an image (needs a model with the VISION capability). */
export type ChatContentPartInput = {
  detail?: ImageDetail | null | undefined;
  /** IMAGE_URL: an https URL or a data:image/…;base64 URI. */
  imageUrl?: string | null | undefined;
  /** TEXT: the text. */
  text?: string | null | undefined;
  type: ChatContentPartType;
};

export type ChatContentPartType =
  | 'IMAGE_URL'
  | 'TEXT';

/** One message. A user message may carry parts (text and images), an assistant message the toolCalls it made, a TOOL message the toolCallId it answers. */
export type ChatMessageInput = {
  /** The text; may be left out when parts or toolCalls say it all. */
  content?: string | null | undefined;
  parts?: Array<ChatContentPartInput> | null | undefined;
  role: ChatRole;
  toolCallId?: string | null | undefined;
  toolCalls?: Array<ChatToolCallInput> | null | undefined;
};

/** The shape of the reply: TEXT, any JSON object, or JSON matching jsonSchema (JSON_OBJECT and JSON_SCHEMA need the JSON_SCHEMA capability). */
export type ChatResponseFormatInput = {
  /** What the reply is (OpenAI json_schema.description). */
  description?: string | null | undefined;
  /** JSON_SCHEMA: the JSON Schema the reply must match. */
  jsonSchema?: unknown;
  /** A name for the schema (OpenAI json_schema.name). */
  name?: string | null | undefined;
  /** Enforce the schema rather than suggest it (where the provider makes the difference). */
  strict?: boolean | null | undefined;
  type: ChatResponseFormatType;
};

export type ChatResponseFormatType =
  | 'JSON_OBJECT'
  | 'JSON_SCHEMA'
  | 'TEXT';

/** Who wrote a message: TOOL is the result of a tool call, sent back to the model. */
export type ChatRole =
  | 'ASSISTANT'
  | 'SYSTEM'
  | 'TOOL'
  | 'USER';

/** A tool call an assistant message made (sent back as history). */
export type ChatToolCallInput = {
  /** The arguments as JSON text. */
  arguments: string;
  id: string;
  name: string;
};

/** Either mode (AUTO: the model decides; NONE: no tool; REQUIRED: some tool), or the name of the one tool the model must call. */
export type ChatToolChoiceInput = {
  mode?: ChatToolChoiceMode | null | undefined;
  name?: string | null | undefined;
};

export type ChatToolChoiceMode =
  | 'AUTO'
  | 'NONE'
  | 'REQUIRED';

/** A tool (a function) the model may call. */
export type ChatToolInput = {
  description?: string | null | undefined;
  /** 1 to 64 letters, digits, "_" or "-". */
  name: string;
  /** Its arguments as a JSON Schema (an object schema). */
  parameters?: unknown;
  /** The arguments must follow parameters exactly (where the provider makes the difference). */
  strict?: boolean | null | undefined;
};

/** Why a chat generation stopped: STOP (natural end or stop sequence), LENGTH (maxTokens reached), CONTENT_FILTER, TOOL_CALLS. */
export type FinishReason =
  | 'CONTENT_FILTER'
  | 'LENGTH'
  | 'STOP'
  | 'TOOL_CALLS';

/** How closely a vision model looks at an image (OpenAI: auto, low, high). */
export type ImageDetail =
  | 'AUTO'
  | 'HIGH'
  | 'LOW';

export type ReasoningEffort =
  | 'HIGH'
  | 'LOW'
  | 'MEDIUM';

export type StreamChatSubscriptionVariables = Exact<{
  input: ChatCompletionInput;
}>;


export type StreamChatSubscription = { chatCompletion:
    | { __typename: 'ChatCompletionCompleted', finishReason: FinishReason, text: string, usage: { completionTokens: number | null } | null }
    | { __typename: 'ChatCompletionStarted', provider: string, model: string }
    | { __typename: 'ChatReasoningDelta' }
    | { __typename: 'ChatTokenDelta', text: string }
    | { __typename: 'ChatToolCallDelta' }
    | { __typename: 'GenerationCancelled', reason: string | null }
    | { __typename: 'GenerationFailed', error: { code: string, message: string } }
    | { __typename: 'ProviderAttemptFailed' }
   };


export const StreamChatDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"StreamChat"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ChatCompletionInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"chatCompletion"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"ChatCompletionStarted"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"provider"}},{"kind":"Field","name":{"kind":"Name","value":"model"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"ChatTokenDelta"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"text"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"ChatCompletionCompleted"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"finishReason"}},{"kind":"Field","name":{"kind":"Name","value":"text"}},{"kind":"Field","name":{"kind":"Name","value":"usage"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"completionTokens"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"GenerationFailed"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"error"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"GenerationCancelled"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"reason"}}]}}]}}]}}]} as unknown as DocumentNode<StreamChatSubscription, StreamChatSubscriptionVariables>;