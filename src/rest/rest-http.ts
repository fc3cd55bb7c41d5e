/**
 * What every REST route shares (`docs/protocols.md` §1): reading and validating
 * JSON bodies, OpenAI-style error bodies with the status each error code maps to, JSON replies,
 * server-sent events, and noticing a client that leaves before the reply is over.
 *
 * Error bodies follow the OpenAI API (`protocols.md` §2):
 * `{"error":{"message","type","param","code"}}`, where `code` is the gateway's stable code
 * (e.g. `MODEL_NOT_FOUND`) and `type` depends on the HTTP status only (see {@link errorTypeForStatus}).
 * The official OpenAI clients pick their error class from the status alone (400 `BadRequestError`,
 * 401 `AuthenticationError`, 403 `PermissionDeniedError`, 404 `NotFoundError`, 429 `RateLimitError`,
 * 5xx `InternalServerError`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import type { z } from 'zod';
import { GatewayError } from '../generations/gateway-error.js';
import type { GenerationErrorShape } from '../generations/generation-events.js';

/** Largest request body accepted when the caller sets no limit, bytes (4 MiB); the app passes `MAX_REQUEST_BODY_BYTES` instead. A larger body is answered with 413. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * The HTTP status for a gateway, provider or image error code:
 * - 400 `BAD_USER_INPUT`, `CONTEXT_LENGTH_EXCEEDED` (the messages do not fit the model's context),
 *   `UNSUPPORTED_INPUT` (the request needs tools, images or a JSON schema that no candidate model can do)
 * - 401 `UNAUTHORIZED`, 403 `FORBIDDEN`
 * - 404 `MODEL_NOT_FOUND`, `PROVIDER_NOT_FOUND`, `GENERATION_NOT_FOUND`, `UPSTREAM_NOT_FOUND`, `ROUTE_NOT_FOUND`, `API_KEY_NOT_FOUND`
 * - 405 `METHOD_NOT_ALLOWED`, 413 `REQUEST_TOO_LARGE`
 * - 429 `RATE_LIMITED`, `BUDGET_EXCEEDED` (a virtual key's token budget is spent)
 * - 501 `DATABASE_NOT_CONFIGURED` (usage or virtual keys on a server with `DATABASE_URL=none`)
 * - 502 `UPSTREAM_ERROR`, `UPSTREAM_BAD_RESPONSE`, `UPSTREAM_CONNECTION_LOST`, `UPSTREAM_BAD_REQUEST`,
 *   `IMAGE_DOWNLOAD_FAILED`, `INVALID_IMAGE`, `PROVIDER_ERROR`, `ALL_PROVIDERS_FAILED`, `WORKER_LOST`,
 *   `INSTANCE_LOST` (the instance running the generation died: its owner lease expired)
 * - 503 `PROVIDER_UNAVAILABLE`, `GENERATION_CANCELLED` (cancelled by someone other than this client,
 *   e.g. `cancelGeneration` or a server shutdown), `SERVICE_UNAVAILABLE` (the server is shutting down),
 *   `EVENT_LOG_UNAVAILABLE` (Redis unreachable), `DATABASE_UNAVAILABLE` (the database cannot be read: usage, history, a virtual key)
 * - 504 `UPSTREAM_TIMEOUT`, `GENERATION_TIMEOUT` (the generation ran past `GENERATION_TIMEOUT_MS`)
 * - 500 anything else: `EVENTS_EXPIRED` (events the reply needs are gone from the log; a retry starts
 *   a new generation), `INTERNAL_ERROR` and codes this table does not know yet.
 */
export function httpStatusForCode(code: string): number {
  switch (code) {
    case 'BAD_USER_INPUT':
    case 'CONTEXT_LENGTH_EXCEEDED':
    case 'UNSUPPORTED_INPUT':
      return 400;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'MODEL_NOT_FOUND':
    case 'PROVIDER_NOT_FOUND':
    case 'GENERATION_NOT_FOUND':
    case 'UPSTREAM_NOT_FOUND':
    case 'ROUTE_NOT_FOUND':
    case 'API_KEY_NOT_FOUND':
      return 404;
    case 'METHOD_NOT_ALLOWED':
      return 405;
    case 'DATABASE_NOT_CONFIGURED':
      return 501;
    case 'REQUEST_TOO_LARGE':
      return 413;
    case 'RATE_LIMITED':
    case 'BUDGET_EXCEEDED':
      return 429;
    case 'UPSTREAM_ERROR':
    case 'UPSTREAM_BAD_RESPONSE':
    case 'UPSTREAM_CONNECTION_LOST':
    case 'UPSTREAM_BAD_REQUEST':
    case 'IMAGE_DOWNLOAD_FAILED':
    case 'INVALID_IMAGE':
    case 'PROVIDER_ERROR':
    case 'ALL_PROVIDERS_FAILED':
    case 'WORKER_LOST':
    case 'INSTANCE_LOST':
      return 502;
    case 'PROVIDER_UNAVAILABLE':
    case 'GENERATION_CANCELLED':
    case 'SERVICE_UNAVAILABLE':
    case 'EVENT_LOG_UNAVAILABLE': // Redis unreachable: retrying later helps (OpenAI clients retry 5xx by themselves)
    case 'DATABASE_UNAVAILABLE':
      return 503;
    case 'UPSTREAM_TIMEOUT':
    case 'GENERATION_TIMEOUT':
      return 504;
    default:
      return 500;
  }
}

/**
 * The OpenAI error `type` for an HTTP status: `authentication_error` (401), `permission_error` (403),
 * `rate_limit_error` (429), `server_error` (5xx), `invalid_request_error` (every other 4xx: 400,
 * 404, 405, 413). Clients branch on the status and `code`; `type` is informative.
 */
export function errorTypeForStatus(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** An error answered with an HTTP status and an OpenAI-style error body. */
export class RestError extends Error {
  override readonly name = 'RestError';
  /** HTTP status, from {@link httpStatusForCode} unless given. */
  readonly status: number;
  /** The gateway's stable code, e.g. `MODEL_NOT_FOUND`. */
  readonly code: string;
  /** The request field at fault (`messages[0].content`), or null. */
  readonly param: string | null;
  /** The provider that failed, when a provider did. */
  readonly provider?: string;
  /** Seconds a client should wait before retrying (sent as `Retry-After`), when known. */
  readonly retryAfterSeconds?: number;
  /** Whether the reply closes the connection (`connection: close`), e.g. after an unread body. */
  readonly closeConnection: boolean;

  constructor(
    code: string,
    message: string,
    options: { status?: number; param?: string | null; provider?: string; retryAfterSeconds?: number; closeConnection?: boolean } = {},
  ) {
    super(message);
    this.code = code;
    this.status = options.status ?? httpStatusForCode(code);
    this.param = options.param ?? null;
    if (options.provider !== undefined) this.provider = options.provider;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    this.closeConnection = options.closeConnection ?? false;
  }

  /** The error object of the body: `{ message, type, param, code, provider? }`. */
  toJSON(): { message: string; type: string; param: string | null; code: string; provider?: string } {
    return {
      message: this.message,
      type: errorTypeForStatus(this.status),
      param: this.param,
      code: this.code,
      ...(this.provider !== undefined && { provider: this.provider }),
    };
  }
}

/** Service field names (camelCase) that appear in `BAD_USER_INPUT` messages, with their REST names. */
const REST_FIELD_NAMES: Record<string, string> = {
  toolCalls: 'tool_calls',
  toolCallId: 'tool_call_id',
  parts: 'content',
  imageUrl: 'image_url',
  jsonSchema: 'json_schema',
  toolChoice: 'tool_choice',
  parallelToolCalls: 'parallel_tool_calls',
  reasoningEffort: 'reasoning_effort',
  topP: 'top_p',
  maxTokens: 'max_tokens',
  numInferenceSteps: 'num_inference_steps',
  negativePrompt: 'negative_prompt',
  aspectRatio: 'aspect_ratio',
  responseFormat: 'response_format',
  conversationId: 'conversation_id',
};

/**
 * A `GatewayError` as a REST error. `BAD_USER_INPUT` messages start with `field: ` (see
 * `parseInput`); the field becomes `param`, each name renamed to its REST spelling (`maxTokens` →
 * `max_tokens`, `messages.0.toolCallId` → `messages[0].tool_call_id`).
 * `MODEL_NOT_FOUND` names `model` and `PROVIDER_NOT_FOUND` names `provider` as `param`.
 */
export function restErrorFromGatewayError(error: GatewayError): RestError {
  if (error.code === 'MODEL_NOT_FOUND') return new RestError(error.code, error.message, { param: 'model' });
  if (error.code === 'PROVIDER_NOT_FOUND') return new RestError(error.code, error.message, { param: 'provider' });
  if (error.code !== 'BAD_USER_INPUT') return new RestError(error.code, error.message);
  const field = /^([A-Za-z]+)((?:\.\d+)*(?:\.[A-Za-z]+)*): /.exec(error.message);
  if (!field) return new RestError(error.code, error.message);
  const name = REST_FIELD_NAMES[field[1]!] ?? field[1]!;
  const rest = field[2]!.replace(/\.(\d+)/g, '[$1]').replace(/\.([A-Za-z]+)/g, (_match, segment: string) => `.${REST_FIELD_NAMES[segment] ?? segment}`);
  const param = `${name}${rest}`;
  const message = `${param}: ${error.message.slice(field[0].length)}`;
  return new RestError(error.code, message, { param });
}

/**
 * A failed generation's error as a REST error. A `retryAfterMs` on the error (not part of the
 * shape today) becomes `Retry-After` in whole seconds, rounded up. `CONTEXT_LENGTH_EXCEEDED` is
 * answered as OpenAI answers it (400, `code: "context_length_exceeded"`, `param: "messages"`,
 * https://platform.openai.com/docs/guides/error-codes), the code clients branch on to shorten a
 * conversation or move to a model with a larger context.
 */
export function restErrorFromGenerationError(error: GenerationErrorShape): RestError {
  if (error.code === 'CONTEXT_LENGTH_EXCEEDED') {
    return new RestError('context_length_exceeded', error.message, {
      status: 400,
      param: 'messages',
      ...(error.provider !== undefined && { provider: error.provider }),
    });
  }
  const retryAfterMs = (error as GenerationErrorShape & { retryAfterMs?: unknown }).retryAfterMs;
  return new RestError(error.code, error.message, {
    ...(error.provider !== undefined && { provider: error.provider }),
    ...(typeof retryAfterMs === 'number' && retryAfterMs >= 0 && { retryAfterSeconds: Math.ceil(retryAfterMs / 1000) }),
  });
}

/**
 * The error as a REST error: `RestError` as it is, `GatewayError` by its code, any other GraphQL
 * error with a string `extensions.code` (the security layer's `UNAUTHORIZED`, `RATE_LIMITED`, …) by
 * that code, with `extensions.retryAfterSeconds` as `Retry-After`; anything else is rethrown.
 */
export function toRestError(error: unknown): RestError {
  if (error instanceof RestError) return error;
  if (error instanceof GatewayError) return restErrorFromGatewayError(error);
  if (error instanceof GraphQLError && typeof error.extensions.code === 'string') {
    const retryAfterSeconds = error.extensions.retryAfterSeconds;
    return new RestError(error.extensions.code, error.message, {
      ...(typeof retryAfterSeconds === 'number' && { retryAfterSeconds }),
    });
  }
  throw error;
}

/** Writes a JSON reply (`content-type: application/json`). Does nothing once the client has gone. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.destroyed || response.writableEnded) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

/** Writes `{"error":{…}}` with the error's status (and `Retry-After` when known, `connection: close` when asked). */
export function sendError(response: ServerResponse, error: RestError, headers: Record<string, string> = {}): void {
  sendJson(response, error.status, { error: error.toJSON() }, {
    ...(error.retryAfterSeconds !== undefined && { 'retry-after': String(error.retryAfterSeconds) }),
    ...(error.closeConnection && { connection: 'close' }),
    ...headers,
  });
}

/**
 * Reads the whole request body as JSON.
 * @param limit largest body accepted, bytes (default {@link MAX_BODY_BYTES}).
 * @throws RestError `REQUEST_TOO_LARGE` (413) when `content-length` or the bytes read exceed `limit`
 *   (see {@link tooLarge});
 *   `BAD_USER_INPUT` (400) for an empty body or invalid JSON.
 */
export async function readJsonBody(request: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(request, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(request, limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new RestError('BAD_USER_INPUT', 'The request body is empty; send a JSON object.');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new RestError('BAD_USER_INPUT', `The request body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * The 413 for a body over `limit`. The rest of the body is read and dropped (so the client, still
 * sending, gets the answer), and the reply closes the connection, so an endless upload ends with it.
 */
function tooLarge(request: IncomingMessage, limit: number): RestError {
  request.resume();
  return new RestError('REQUEST_TOO_LARGE', `The request body is larger than ${limit} bytes.`, { closeConnection: true });
}

/** `['messages', 0, 'content']` → `messages[0].content`. */
function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else text += text === '' ? String(key) : `.${String(key)}`;
  }
  return text;
}

/**
 * Validates a parsed body with a zod schema (unknown fields are the schema's business; ours strip them).
 * @throws RestError `BAD_USER_INPUT` (400) whose `param` is the first bad field and whose message names it.
 */
export function parseBody<Schema extends z.ZodType>(schema: Schema, body: unknown): z.output<Schema> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RestError('BAD_USER_INPUT', 'The request body must be a JSON object.');
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.length > 0 ? formatPath(issue.path) : null;
  throw new RestError('BAD_USER_INPUT', param ? `${param}: ${issue.message}` : issue.message, { param });
}

/** Headers of a server-sent event stream: no caching, kept open, not buffered by proxies (nginx). */
export const EVENT_STREAM_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/**
 * Writes server-sent events the way OpenAI streams them: `data: <json>\n\n` per event (one
 * `write` each, nothing buffered), then `data: [DONE]\n\n`. Writes after the client left are dropped.
 */
export class EventStreamWriter {
  /** @param response the response the events go to (also used to answer an error before the stream starts). */
  constructor(readonly response: ServerResponse) {}

  /** Whether the 200 and the headers went out. */
  get started(): boolean {
    return this.response.headersSent;
  }

  /** Whether writing still reaches the client. */
  get open(): boolean {
    return !this.response.destroyed && !this.response.writableEnded;
  }

  /** Sends status 200 and {@link EVENT_STREAM_HEADERS} (once). */
  start(): void {
    if (this.response.headersSent || !this.open) return;
    this.response.writeHead(200, EVENT_STREAM_HEADERS);
  }

  /** Sends one `data: <json>` event. */
  send(data: unknown): void {
    this.start();
    if (this.open) this.response.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Sends an in-band error `data: {"error":{message,type,param,code}}`. */
  sendError(error: RestError): void {
    this.send({ error: error.toJSON() });
  }

  /** Sends `data: [DONE]` and ends the response. */
  done(): void {
    this.start();
    if (this.open) this.response.end('data: [DONE]\n\n');
  }
}

/**
 * Watches for a client that leaves: the response closes before it was finished (socket closed,
 * request aborted). `onGone` runs once, at once if the client has already gone.
 */
export class ClientConnection {
  private leftEarly = false;
  private listeners: Array<() => void> = [];

  constructor(response: ServerResponse) {
    if (response.destroyed && !response.writableFinished) this.leftEarly = true;
    response.once('close', () => {
      if (response.writableFinished) return;
      this.leftEarly = true;
      const listeners = this.listeners;
      this.listeners = [];
      for (const listener of listeners) listener();
    });
  }

  /** Whether the client left before the reply was complete. */
  get gone(): boolean {
    return this.leftEarly;
  }

  /** Runs `listener` when the client leaves early (at once if it already has). */
  onGone(listener: () => void): void {
    if (this.leftEarly) listener();
    else this.listeners.push(listener);
  }
}

/** The time as OpenAI's `created`: whole seconds since the Unix epoch. */
export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
