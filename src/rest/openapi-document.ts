/**
 * The OpenAPI 3.1 description of the REST API (`/v1`), served at `GET /v1/openapi.json`
 * (https://spec.openapis.org/oas/v3.1.0). The request bodies are the routes' own zod schemas,
 * converted with zod's `toJSONSchema` (what is validated is what is described); the responses are
 * written here, and the tests check every kind of real response against them, so the two cannot
 * drift apart. Wire facts: `docs/protocols.md` §1.
 */
import { z } from 'zod';
import { chatCompletionRequestSchema } from './chat-completion-request.js';
import { imageGenerationRequestSchema } from './image-generations.js';

/** A JSON Schema object (OpenAPI 3.1 schemas are JSON Schema 2020-12). */
type JsonSchema = Record<string, unknown>;

/** A reference to `#/components/schemas/<name>`. */
const reference = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/** `type` or null. */
const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });

/** A request body schema from a route's zod schema (as it is parsed: its input side). */
function requestSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...converted } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return converted;
}

const usage: JsonSchema = {
  type: 'object',
  required: ['prompt_tokens', 'completion_tokens', 'total_tokens'],
  properties: { prompt_tokens: { type: 'integer' }, completion_tokens: { type: 'integer' }, total_tokens: { type: 'integer' } },
};

const toolCall: JsonSchema = {
  type: 'object',
  required: ['id', 'type', 'function'],
  properties: {
    id: { type: 'string' },
    type: { const: 'function' },
    function: { type: 'object', required: ['name', 'arguments'], properties: { name: { type: 'string' }, arguments: { type: 'string', description: 'JSON text' } } },
  },
};

/** What every chat reply and chunk starts with. */
const chatHead: Record<string, JsonSchema> = {
  id: { type: 'string', description: '`chatcmpl-` and the generation id' },
  created: { type: 'integer', description: 'Unix time, seconds' },
  model: { type: 'string' },
  provider: { type: 'string', description: 'the provider that answered (a gpt4free field)' },
  conversation_id: { type: 'string', description: 'present when the request named a conversation' },
};

const finishReason: JsonSchema = nullable({ enum: ['stop', 'length', 'tool_calls', 'content_filter'] });

const schemas: Record<string, JsonSchema> = {
  ChatCompletionRequest: requestSchema(chatCompletionRequestSchema),
  ImageGenerationRequest: requestSchema(imageGenerationRequestSchema),
  Usage: usage,
  ToolCall: toolCall,
  ChatCompletion: {
    type: 'object',
    required: ['id', 'object', 'created', 'model', 'provider', 'choices'],
    properties: {
      ...chatHead,
      object: { const: 'chat.completion' },
      choices: {
        type: 'array',
        minItems: 1,
        maxItems: 1,
        items: {
          type: 'object',
          required: ['index', 'message', 'finish_reason'],
          properties: {
            index: { const: 0 },
            message: {
              type: 'object',
              required: ['role', 'content'],
              properties: {
                role: { const: 'assistant' },
                content: nullable({ type: 'string' }),
                tool_calls: { type: 'array', items: reference('ToolCall') },
                reasoning_content: { type: 'string' },
              },
            },
            finish_reason: finishReason,
          },
        },
      },
      usage: reference('Usage'),
    },
  },
  ChatCompletionChunk: {
    type: 'object',
    description: 'One `data:` event of a streamed reply; the stream ends with `data: [DONE]`. A failure after the first chunk is one `data: {"error": …}` event (see Error).',
    required: ['id', 'object', 'created', 'model', 'provider', 'choices'],
    properties: {
      ...chatHead,
      object: { const: 'chat.completion.chunk' },
      choices: {
        type: 'array',
        items: {
          type: 'object',
          required: ['index', 'delta', 'finish_reason'],
          properties: {
            index: { const: 0 },
            delta: {
              type: 'object',
              properties: {
                role: { const: 'assistant' },
                content: nullable({ type: 'string' }),
                reasoning_content: { type: 'string' },
                tool_calls: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['index', 'function'],
                    properties: {
                      index: { type: 'integer' },
                      id: { type: 'string' },
                      type: { const: 'function' },
                      function: { type: 'object', properties: { name: { type: 'string' }, arguments: { type: 'string' } } },
                    },
                  },
                },
              },
            },
            finish_reason: finishReason,
          },
        },
      },
      usage: reference('Usage'),
    },
  },
  ImageGeneration: {
    type: 'object',
    required: ['created', 'model', 'provider', 'data'],
    properties: {
      created: { type: 'integer', description: 'Unix time, seconds' },
      model: { type: 'string' },
      provider: { type: 'string' },
      data: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            url: { type: 'string', description: 'where this server serves the image (response_format url)' },
            b64_json: { type: 'string', description: 'the image, base64 (response_format b64_json)' },
            revised_prompt: { type: 'string' },
          },
          oneOf: [{ required: ['url'] }, { required: ['b64_json'] }],
        },
      },
    },
  },
  Model: {
    type: 'object',
    required: ['id', 'object', 'created', 'owned_by', 'provider', 'providers', 'type', 'capabilities'],
    properties: {
      id: { type: 'string' },
      object: { const: 'model' },
      created: { type: 'integer', description: '0: unknown' },
      owned_by: { type: 'string', description: 'the first provider serving it' },
      provider: { type: 'string' },
      providers: { type: 'array', items: { type: 'string' } },
      type: { enum: ['chat', 'image'] },
      capabilities: { type: 'array', items: { enum: ['chat', 'image', 'tools', 'vision', 'json-schema', 'reasoning'] } },
    },
  },
  ModelList: {
    type: 'object',
    required: ['object', 'data'],
    properties: { object: { const: 'list' }, data: { type: 'array', items: reference('Model') } },
  },
  Provider: {
    type: 'object',
    required: ['id', 'object', 'created', 'label', 'available', 'unavailable_reason', 'models', 'image_models', 'capabilities'],
    properties: {
      id: { type: 'string' },
      object: { const: 'provider' },
      created: { type: 'integer' },
      label: { type: 'string' },
      available: { type: 'boolean' },
      unavailable_reason: nullable({ type: 'string' }),
      models: { type: 'array', items: { type: 'string' } },
      image_models: { type: 'array', items: { type: 'string' } },
      capabilities: { type: 'array', items: { type: 'string' } },
    },
  },
  UsageReport: {
    type: 'object',
    required: ['object', 'scope', 'from', 'to', 'group_by', 'data'],
    properties: {
      object: { const: 'usage_report' },
      scope: { enum: ['mine', 'all'] },
      from: { type: 'string', format: 'date-time' },
      to: { type: 'string', format: 'date-time' },
      group_by: { type: 'array', items: { enum: ['key', 'model', 'provider', 'day'] } },
      data: {
        type: 'array',
        items: {
          type: 'object',
          required: ['requests', 'completed', 'failed', 'cancelled', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'images', 'cost', 'unpriced_requests'],
          properties: {
            key: nullable({ type: 'string' }),
            model: nullable({ type: 'string' }),
            provider: nullable({ type: 'string' }),
            day: nullable({ type: 'string', format: 'date' }),
            requests: { type: 'integer' },
            completed: { type: 'integer' },
            failed: { type: 'integer' },
            cancelled: { type: 'integer' },
            prompt_tokens: { type: 'integer' },
            completion_tokens: { type: 'integer' },
            total_tokens: { type: 'integer' },
            images: { type: 'integer' },
            cost: nullable({ type: 'number', description: 'in the currency of MODEL_PRICES; null unless every generation of the group has a price' }),
            unpriced_requests: { type: 'integer' },
            mean_time_to_first_token_ms: nullable({ type: 'number' }),
            mean_duration_ms: nullable({ type: 'number' }),
          },
        },
      },
    },
  },
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['message', 'type', 'param', 'code'],
        properties: {
          message: { type: 'string' },
          type: { enum: ['invalid_request_error', 'authentication_error', 'permission_error', 'rate_limit_error', 'server_error'] },
          param: nullable({ type: 'string' }),
          code: { type: 'string', description: "the gateway's stable code, e.g. MODEL_NOT_FOUND (docs/rest-api.md)" },
          provider: { type: 'string', description: 'the provider that failed, when one did' },
        },
      },
    },
  },
};

/** JSON `content` of `schema`. */
const json = (schema: JsonSchema) => ({ 'application/json': { schema } });

/** The error responses a route may answer, by status. */
function errors(...statuses: number[]): Record<string, unknown> {
  const descriptions: Record<number, string> = {
    400: 'bad request (BAD_USER_INPUT, UNSUPPORTED_INPUT, CONTEXT_LENGTH_EXCEEDED)',
    401: 'no or no valid API key (UNAUTHORIZED)',
    403: 'not allowed for this key (FORBIDDEN)',
    404: 'unknown model, provider or path',
    413: 'body too large (REQUEST_TOO_LARGE)',
    429: 'rate limited or over budget (RATE_LIMITED, BUDGET_EXCEEDED); see Retry-After',
    501: 'needs a database (DATABASE_NOT_CONFIGURED)',
    502: 'the provider failed',
    503: 'unavailable (PROVIDER_UNAVAILABLE, SERVICE_UNAVAILABLE, DATABASE_UNAVAILABLE, …)',
    504: 'the provider or the generation timed out',
  };
  return Object.fromEntries(statuses.map((status) => [String(status), { description: descriptions[status], content: json(reference('Error')) }]));
}

const GENERATION_ERRORS = [400, 401, 403, 404, 413, 429, 502, 503, 504];
const bearer = [{ apiKey: [] }];
const idParameter = (what: string) => ({ name: 'id', in: 'path', required: true, description: `the ${what} id (may contain "/" and ":")`, schema: { type: 'string' } });

/** The document; built once. `serverUrl` is left out: clients use the URL they fetched it from. */
export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'GraphQL AI gateway — REST API',
    version: '1',
    description:
      'The gpt4free/OpenAI-compatible REST API of the gateway (docs/rest-api.md). The GraphQL API (schema.graphql) is the full contract; this covers /v1.',
  },
  security: bearer,
  paths: {
    '/v1/chat/completions': {
      post: {
        operationId: 'createChatCompletion',
        summary: 'A chat completion; with stream: true, server-sent events of chat.completion.chunk, then data: [DONE]',
        requestBody: { required: true, content: json(reference('ChatCompletionRequest')) },
        responses: {
          '200': {
            description: 'the completion (JSON), or its chunks (text/event-stream) when the request asked to stream',
            content: { ...json(reference('ChatCompletion')), 'text/event-stream': { schema: reference('ChatCompletionChunk') } },
          },
          ...errors(...GENERATION_ERRORS),
        },
      },
    },
    ...Object.fromEntries(
      ['/v1/images/generations', '/v1/images/generate'].map((path, index) => [
        path,
        {
          post: {
            operationId: index === 0 ? 'createImage' : 'createImageGpt4free',
            summary: index === 0 ? 'Generates images' : 'The same as /v1/images/generations (gpt4free’s path)',
            requestBody: { required: true, content: json(reference('ImageGenerationRequest')) },
            responses: { '200': { description: 'the images', content: json(reference('ImageGeneration')) }, ...errors(...GENERATION_ERRORS) },
          },
        },
      ]),
    ),
    '/v1/models': {
      get: { operationId: 'listModels', summary: 'Every model, with the providers serving it', responses: { '200': { description: 'the models', content: json(reference('ModelList')) }, ...errors(401) } },
    },
    '/v1/models/{id}': {
      get: {
        operationId: 'getModel',
        parameters: [idParameter('model')],
        responses: { '200': { description: 'the model', content: json(reference('Model')) }, ...errors(401, 404) },
      },
    },
    '/v1/providers': {
      get: {
        operationId: 'listProviders',
        summary: 'Every provider in priority order, with its availability (a plain array, as gpt4free answers)',
        responses: { '200': { description: 'the providers', content: json({ type: 'array', items: reference('Provider') }) }, ...errors(401) },
      },
    },
    '/v1/providers/{id}': {
      get: {
        operationId: 'getProvider',
        parameters: [idParameter('provider')],
        responses: { '200': { description: 'the provider', content: json(reference('Provider')) }, ...errors(401, 404) },
      },
    },
    '/v1/usage': {
      get: {
        operationId: 'getUsage',
        summary: "The caller's usage (scope mine), or everyone's for the master key (scope all)",
        parameters: [
          { name: 'from', in: 'query', description: 'start, ISO 8601 (a date means UTC midnight); default 30 days before to', schema: { type: 'string' } },
          { name: 'to', in: 'query', description: 'end (exclusive); default now', schema: { type: 'string' } },
          { name: 'group_by', in: 'query', description: 'key, model, provider, day; repeated or comma-separated', schema: { type: 'array', items: { type: 'string' } }, style: 'form', explode: true },
          { name: 'scope', in: 'query', schema: { enum: ['mine', 'all'], default: 'mine' } },
        ],
        responses: { '200': { description: 'the report', content: json(reference('UsageReport')) }, ...errors(400, 401, 403, 501, 503) },
      },
    },
    '/v1/openapi.json': {
      get: { operationId: 'getOpenApiDocument', summary: 'This document', security: [], responses: { '200': { description: 'the OpenAPI document', content: json({ type: 'object' }) } } },
    },
  },
  components: {
    schemas,
    securitySchemes: {
      apiKey: { type: 'http', scheme: 'bearer', description: 'an API key of the gateway (needed once any key is configured); gpt4free clients may send it as g4f-api-key instead' },
    },
  },
} as const;
