/**
 * The OpenAI-compatible provider against a real HTTP fake upstream
 * (`test/helpers/fake-openai-upstream.ts`, wire format of `docs/protocols.md` §2).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenAICompatibleUpstreamConfig } from '../../src/config.js';
import { AbortHandle } from '../../src/providers/abort-handle.js';
import { createOpenAICompatibleProvider } from '../../src/providers/openai-compatible/openai-compatible-provider.js';
import { ProviderError, type ChatRequest, type ChatStreamPart } from '../../src/providers/provider.js';
import {
  fakeTokens,
  startFakeOpenAIUpstream,
  unusedBaseURL,
  type FakeOpenAIUpstream,
} from '../helpers/fake-openai-upstream.js';

const API_KEY = 'sk-test-very-secret-key-1234567890';

function upstreamConfig(baseURL: string, overrides: Partial<OpenAICompatibleUpstreamConfig> = {}): OpenAICompatibleUpstreamConfig {
  return { id: 'groq', baseURL, apiKey: API_KEY, connectTimeoutMs: 5_000, idleTimeoutMs: 5_000, ...overrides };
}

function chatRequest(model: string, overrides: Partial<ChatRequest> = {}): ChatRequest {
  return { model, messages: [{ role: 'user', content: 'tell me a story' }], ...overrides };
}

/** Reads a whole stream; returns the parts and the error it ended with, if any. */
async function collect(stream: AsyncIterable<ChatStreamPart>): Promise<{ parts: ChatStreamPart[]; error?: unknown }> {
  const parts: ChatStreamPart[] = [];
  try {
    for await (const part of stream) parts.push(part);
    return { parts };
  } catch (error) {
    return { parts, error };
  }
}

function textOf(parts: ChatStreamPart[]): string {
  return parts.map((part) => (part.type === 'text-delta' ? part.text : '')).join('');
}

function expectProviderError(error: unknown, code: ProviderError['code']): ProviderError {
  expect(error).toBeInstanceOf(ProviderError);
  const providerError = error as ProviderError;
  expect(providerError.code).toBe(code);
  expect(providerError.provider).toBe('groq');
  expect(providerError.message).not.toContain(API_KEY);
  return providerError;
}

let upstream: FakeOpenAIUpstream;

beforeEach(async () => {
  upstream = await startFakeOpenAIUpstream({ models: ['llama-3.1-8b', 'mixtral-8x7b'] });
});

afterEach(async () => {
  await upstream.close();
});

describe('identity', () => {
  it('takes id and label from the config and serves chat', () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { label: 'Groq Cloud' }));
    expect(provider.id).toBe('groq');
    expect(provider.label).toBe('Groq Cloud');
    expect(provider.capabilities).toEqual(['chat']);
    expect(createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL)).label).toBe('groq');
  });
});

describe('streamChat', () => {
  it('streams the tokens, then one finish part with the mapped usage', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(
      provider.streamChat(chatRequest('stream?tokens=12'), { signal: new AbortController().signal }),
    );
    expect(error).toBeUndefined();
    expect(textOf(parts)).toBe(fakeTokens(12).join(''));
    expect(parts.filter((part) => part.type === 'text-delta').every((part) => part.type === 'text-delta' && part.text !== '')).toBe(true);
    expect(parts.filter((part) => part.type === 'finish')).toHaveLength(1);
    expect(parts.at(-1)).toEqual({
      type: 'finish',
      finishReason: 'stop',
      usage: { promptTokens: 4, completionTokens: 12, totalTokens: 16 },
    });
  });

  it('sends the OpenAI request body and headers', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { headers: { 'X-Title': 'gateway-test' } }));
    const request = chatRequest('llama-3.1-8b', { temperature: 0.5, topP: 0.9, maxTokens: 64, stop: ['\n\n'], seed: 7 });
    const { error } = await collect(provider.streamChat(request, { signal: new AbortController().signal }));
    expect(error).toBeUndefined();

    const [recorded] = upstream.chatRequests();
    expect(recorded?.method).toBe('POST');
    expect(recorded?.path).toBe('/v1/chat/completions');
    expect(recorded?.body).toEqual({
      model: 'llama-3.1-8b',
      messages: [{ role: 'user', content: 'tell me a story' }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      top_p: 0.9,
      max_tokens: 64,
      stop: ['\n\n'],
      seed: 7,
    });
    expect(recorded?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(recorded?.headers['content-type']).toBe('application/json');
    expect(recorded?.headers.accept).toBe('text/event-stream');
    expect(recorded?.headers['x-title']).toBe('gateway-test');
  });

  it('omits unset sampling fields and the Authorization header without a key', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { apiKey: undefined }));
    await collect(provider.streamChat(chatRequest('llama-3.1-8b'), { signal: new AbortController().signal }));
    const recorded = upstream.chatRequests()[0]!;
    expect(Object.keys(recorded.body as object).sort()).toEqual(['messages', 'model', 'stream', 'stream_options']);
    expect(recorded.headers.authorization).toBeUndefined();
  });

  it('sends the first text of a read at once, then coalesces the rest of that read into one text-delta', async () => {
    upstream.setScenario({ type: 'stream', tokenCount: 20, singleWrite: true });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(provider.streamChat(chatRequest('llama-3.1-8b'), { signal: new AbortController().signal }));
    expect(error).toBeUndefined();
    expect(parts).toEqual([
      { type: 'text-delta', text: fakeTokens(1).join('') },
      { type: 'text-delta', text: fakeTokens(20).slice(1).join('') },
      { type: 'finish', finishReason: 'stop', usage: { promptTokens: 4, completionTokens: 20, totalTokens: 24 } },
    ]);
  });

  it('yields separate deltas for tokens that arrive in separate reads', async () => {
    upstream.setScenario({ type: 'stream', tokenCount: 3, gapMs: 40 });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts } = await collect(provider.streamChat(chatRequest('llama-3.1-8b'), { signal: new AbortController().signal }));
    const deltas = parts.filter((part) => part.type === 'text-delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(textOf(parts)).toBe(fakeTokens(3).join(''));
  });

  it('maps finish_reason "length" to length', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(provider.streamChat(chatRequest('length?tokens=5'), { signal: new AbortController().signal }));
    expect(error).toBeUndefined();
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'length' });
  });

  it('maps content_filter and tool_calls, and treats unknown reasons as stop', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const reasons: Array<[string, string]> = [
      ['content_filter', 'content-filter'],
      ['tool_calls', 'tool-calls'],
      ['function_call', 'tool-calls'],
      ['eos_token', 'stop'],
    ];
    for (const [upstreamReason, expected] of reasons) {
      upstream.setScenario({ type: 'stream', tokenCount: 1, finishReason: upstreamReason });
      const { parts } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
      expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: expected });
    }
  });

  it('finishes with stop and no usage when [DONE] comes without finish_reason or usage', async () => {
    upstream.setScenario({ type: 'stream', tokenCount: 2, omitFinish: true, omitUsage: true });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    expect(error).toBeUndefined();
    expect(parts.at(-1)).toEqual({ type: 'finish', finishReason: 'stop' });
  });

  it('finishes when the body ends after a finish_reason but without [DONE]', async () => {
    upstream.setScenario({ type: 'stream', tokenCount: 2, omitDone: true });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    expect(error).toBeUndefined();
    expect(parts.at(-1)).toEqual({ type: 'finish', finishReason: 'stop', usage: { promptTokens: 4, completionTokens: 2, totalTokens: 6 } });
  });

  it('429 → RATE_LIMITED with retryAfterMs from Retry-After seconds', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(
      provider.streamChat(chatRequest('rate-limited?retryAfterSeconds=3'), { signal: new AbortController().signal }),
    );
    expect(parts).toEqual([]);
    const providerError = expectProviderError(error, 'RATE_LIMITED');
    expect(providerError.statusCode).toBe(429);
    expect(providerError.retryAfterMs).toBe(3_000);
    expect(providerError.isRetryable).toBe(true);
    expect(providerError.message).toBe('upstream groq answered 429: Rate limit reached for model `rate-limited?retryAfterSeconds=3`. Please try again in 3s.');
  });

  it('429 → retryAfterMs from a Retry-After HTTP date', async () => {
    const retryAt = new Date(Date.now() + 120_000).toUTCString();
    upstream.setScenario({ type: 'rate-limited', retryAfter: retryAt });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    const providerError = expectProviderError(error, 'RATE_LIMITED');
    expect(providerError.retryAfterMs).toBeGreaterThan(100_000);
    expect(providerError.retryAfterMs).toBeLessThanOrEqual(120_000);
  });

  it('500 → UPSTREAM_ERROR carrying the upstream message', async () => {
    upstream.setScenario({ type: 'server-error', message: 'model overloaded, try later' });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.statusCode).toBe(500);
    expect(providerError.message).toBe('upstream groq answered 500: model overloaded, try later');
  });

  it('401 → UNAUTHORIZED, and the key the upstream echoed is redacted', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { error } = await collect(provider.streamChat(chatRequest('unauthorized'), { signal: new AbortController().signal }));
    const providerError = expectProviderError(error, 'UNAUTHORIZED');
    expect(providerError.statusCode).toBe(401);
    expect(providerError.isRetryable).toBe(false);
    expect(providerError.message).toContain('upstream groq answered 401: Incorrect API key provided: ***.');
  });

  it('maps 403, 404, 408, other 4xx and 503 to their codes, and falls back to the raw body text', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const cases: Array<[number, ProviderError['code']]> = [
      [403, 'FORBIDDEN'],
      [404, 'UPSTREAM_NOT_FOUND'],
      [408, 'UPSTREAM_TIMEOUT'],
      [422, 'UPSTREAM_BAD_REQUEST'],
      [503, 'UPSTREAM_ERROR'],
    ];
    for (const [status, code] of cases) {
      upstream.setScenario({ type: 'http-error', status, message: `status ${status} says no` });
      const { error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
      const providerError = expectProviderError(error, code);
      expect(providerError.statusCode).toBe(status);
      expect(providerError.message).toBe(`upstream groq answered ${status}: status ${status} says no`);
    }
    upstream.setScenario({ type: 'http-error', status: 502, rawBody: '  <html>Bad Gateway</html>\n' });
    const raw = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    expect(expectProviderError(raw.error, 'UPSTREAM_ERROR').message).toBe('upstream groq answered 502: <html>Bad Gateway</html>');

    upstream.setScenario(undefined);
    const { error } = await collect(provider.streamChat(chatRequest('not-found'), { signal: new AbortController().signal }));
    expect(expectProviderError(error, 'UPSTREAM_NOT_FOUND').message).toBe(
      'upstream groq answered 404: The model `not-found` does not exist or you do not have access to it.',
    );
  });

  it('malformed JSON mid-stream → UPSTREAM_BAD_RESPONSE after the text that came before', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(
      provider.streamChat(chatRequest('malformed-json?tokensBefore=3&gapMs=5'), { signal: new AbortController().signal }),
    );
    const providerError = expectProviderError(error, 'UPSTREAM_BAD_RESPONSE');
    expect(providerError.message).toMatch(/malformed JSON/);
    expect(textOf(parts)).toBe(fakeTokens(3).join(''));
    expect(parts.some((part) => part.type === 'finish')).toBe(false);
  });

  describe('chunk shapes (each chunk sent as is by a local SSE server)', () => {
    let server: Server | undefined;
    afterEach(() => {
      server?.closeAllConnections();
      server?.close();
    });
    /**
     * Streams the chunks (JSON values) as `data:` events, then `[DONE]`, from a local server in one
     * write, lines ending in `lineEnd`; returns what the provider made of them.
     */
    const streamChunks = async (chunks: unknown[], lineEnd = '\n') => {
      server = createServer((request, response) => {
        request.resume();
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.end([...chunks.map((chunk) => `data: ${JSON.stringify(chunk)}`), 'data: [DONE]'].map((line) => line + lineEnd + lineEnd).join(''));
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      return collect(createOpenAICompatibleProvider(upstreamConfig(baseURL)).streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    };

    it('reads the usual deltas, the first of several choices, a finish reason and usage', async () => {
      const { parts, error } = await streamChunks([
        { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
        { choices: [{ delta: { content: 'Hel' } }] },
        { choices: [{ delta: null, finish_reason: null }] },
        { choices: [{ delta: { content: 'lo' } }, { delta: { content: ' other choice' } }] },
        { choices: [{ delta: {}, finish_reason: 'length' }] },
        { choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
      ]);
      expect(error).toBeUndefined();
      expect(textOf(parts)).toBe('Hello');
      expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'length', usage: { promptTokens: 3, completionTokens: 2 } });
    });

    it.each([
      ['LF', '\n'],
      ['CRLF', '\r\n'],
      ['CR', '\r'],
    ])('reads a one-write stream with %s line endings: the first text alone (when lines end in LF), then the rest', async (_name, lineEnd) => {
      const { parts, error } = await streamChunks(
        [
          { choices: [{ delta: { role: 'assistant', content: '' } }] },
          { choices: [{ delta: { content: 'Once' } }] },
          { choices: [{ delta: { content: ' upon' } }] },
          { choices: [{ delta: { content: ' a time' }, finish_reason: 'stop' }] },
        ],
        lineEnd,
      );
      expect(error).toBeUndefined();
      const deltas = parts.filter((part) => part.type === 'text-delta').map((part) => part.text);
      // Lines are split at LF only; a CR-only stream (rare) is parsed whole, its text in one part.
      expect(deltas).toEqual(lineEnd === '\r' ? ['Once upon a time'] : ['Once', ' upon a time']);
      expect(parts.at(-1)).toEqual({ type: 'finish', finishReason: 'stop' });
    });

    it('decodes multi-byte UTF-8 text in a one-write stream, the first text and the rest alike', async () => {
      const { parts, error } = await streamChunks([
        { choices: [{ delta: { content: 'Grüße 👋' } }] },
        { choices: [{ delta: { content: ' — naïve 日本' } }] },
        { choices: [{ delta: { content: '語 🎉' }, finish_reason: 'stop' }] },
      ]);
      expect(error).toBeUndefined();
      expect(parts.filter((part) => part.type === 'text-delta').map((part) => part.text)).toEqual(['Grüße 👋', ' — naïve 日本語 🎉']);
    });

    it.each([
      ['a number as content', { choices: [{ delta: { content: 5 } }] }, /wrong shape \(choices\.0\.delta\.content: /],
      ['an array as delta', { choices: [{ delta: ['x'] }] }, /wrong shape \(choices\.0\.delta: /],
      ['a number as finish_reason', { choices: [{ delta: { content: 'x' }, finish_reason: 1 }] }, /wrong shape \(choices\.0\.finish_reason: /],
      ['choices that are not a list', { choices: { delta: { content: 'x' } } }, /wrong shape \(choices: /],
    ])('%s → UPSTREAM_BAD_RESPONSE naming the field', async (_name, chunk, message) => {
      const { parts, error } = await streamChunks([{ choices: [{ delta: { content: 'ok' } }] }, chunk]);
      expect(expectProviderError(error, 'UPSTREAM_BAD_RESPONSE').message).toMatch(message);
      expect(textOf(parts)).toBe('ok');
    });
  });

  it('an in-band error chunk → UPSTREAM_ERROR with its message', async () => {
    upstream.setScenario({ type: 'in-band-error', tokensBefore: 2, message: 'CUDA out of memory' });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toBe('upstream groq reported an error: CUDA out of memory');
    expect(textOf(parts)).toBe(fakeTokens(2).join(''));
  });

  it('a connection destroyed mid-stream → UPSTREAM_CONNECTION_LOST', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { parts, error } = await collect(
      provider.streamChat(chatRequest('drop-connection?tokensBefore=3'), { signal: new AbortController().signal }),
    );
    const providerError = expectProviderError(error, 'UPSTREAM_CONNECTION_LOST');
    expect(providerError.isRetryable).toBe(true);
    expect(textOf(parts)).toBe(fakeTokens(3).join(''));
  });

  it('a body that ends cleanly without finish_reason or [DONE] → UPSTREAM_CONNECTION_LOST', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { error } = await collect(provider.streamChat(chatRequest('truncated'), { signal: new AbortController().signal }));
    expect(expectProviderError(error, 'UPSTREAM_CONNECTION_LOST').message).toBe('upstream groq stream ended before [DONE]');
  });

  it('a stalled stream → UPSTREAM_TIMEOUT after idleTimeoutMs, and the upstream request is closed', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { idleTimeoutMs: 200 }));
    const started = performance.now();
    const { parts, error } = await collect(provider.streamChat(chatRequest('stall?tokensBefore=2'), { signal: new AbortController().signal }));
    const elapsedMs = performance.now() - started;
    const providerError = expectProviderError(error, 'UPSTREAM_TIMEOUT');
    expect(providerError.message).toBe('upstream groq sent nothing for 200 ms (idle timeout)');
    expect(elapsedMs).toBeGreaterThanOrEqual(190);
    expect(textOf(parts)).toBe(fakeTokens(2).join(''));
    await upstream.waitForClientClose();
    expect(await upstream.chatRequests()[0]!.ended).toBe('client-closed');
  });

  it('no response headers within connectTimeoutMs → UPSTREAM_TIMEOUT', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { connectTimeoutMs: 200 }));
    const { error } = await collect(provider.streamChat(chatRequest('hang'), { signal: new AbortController().signal }));
    expect(expectProviderError(error, 'UPSTREAM_TIMEOUT').message).toBe('upstream groq sent no response headers within 200 ms');
    await upstream.waitForClientClose();
  });

  it('an unreachable upstream → UPSTREAM_ERROR naming the cause', async () => {
    const baseURL = await unusedBaseURL();
    const provider = createOpenAICompatibleProvider(upstreamConfig(baseURL));
    const { parts, error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    expect(parts).toEqual([]);
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toMatch(/^cannot reach upstream groq: .*ECONNREFUSED/);
  });

  it('aborting the signal closes the upstream connection and throws the reason, not a ProviderError', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const controller = new AbortController();
    const reason = new Error('the client went away');
    const received: ChatStreamPart[] = [];
    let thrown: unknown;
    try {
      for await (const part of provider.streamChat(chatRequest('endless?gapMs=5'), { signal: controller.signal })) {
        received.push(part);
        if (received.length === 3) controller.abort(reason);
      }
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBe(reason);
    expect(thrown).not.toBeInstanceOf(ProviderError);
    expect(received).toHaveLength(3);
    await upstream.waitForClientClose();
    expect(await upstream.chatRequests()[0]!.ended).toBe('client-closed');
  });

  it('follows `abort` when given, without reading `signal` (the generation service makes that only on read)', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const abort = new AbortHandle();
    const options = {
      abort,
      get signal(): AbortSignal {
        throw new Error('signal was read');
      },
    };
    const reason = new Error('cancelled');
    const received: ChatStreamPart[] = [];
    let thrown: unknown;
    try {
      for await (const part of provider.streamChat(chatRequest('endless?gapMs=5'), options)) {
        received.push(part);
        if (received.length === 2) abort.abort(reason);
      }
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBe(reason);
    expect(received).toHaveLength(2);
    await upstream.waitForClientClose();
    expect(await upstream.chatRequests()[0]!.ended).toBe('client-closed');
  });

  it('aborting while a read is pending rejects that read with the reason', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const controller = new AbortController();
    const iterator = provider.streamChat(chatRequest('stall?tokensBefore=1'), { signal: controller.signal })[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value).toEqual({ type: 'text-delta', text: fakeTokens(1).join('') });
    const pending = iterator.next();
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await upstream.waitForClientClose();
  });

  it('a consumer that stops iterating closes the upstream connection', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    for await (const part of provider.streamChat(chatRequest('endless?gapMs=5'), { signal: new AbortController().signal })) {
      expect(part.type).toBe('text-delta');
      break;
    }
    await upstream.waitForClientClose();
    expect(upstream.closedRequests()).toBe(1);
  });

  it('an already aborted signal sends no request', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const { error } = await collect(provider.streamChat(chatRequest('m'), { signal: AbortSignal.abort() }));
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('uses an injected fetch for model discovery, and undici for the chat stream', async () => {
    const seen: string[] = [];
    const recordingFetch: typeof fetch = (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    };
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL), { fetch: recordingFetch });
    const { error } = await collect(provider.streamChat(chatRequest('m'), { signal: new AbortController().signal }));
    expect(error).toBeUndefined();
    expect(await provider.listModels()).not.toEqual([]);
    expect(seen).toEqual([`${upstream.baseURL}/models`]);
    expect(upstream.requests.map((request) => `${request.method} ${request.path}`)).toEqual(['POST /v1/chat/completions', 'GET /v1/models']);
  });
});

describe('listModels', () => {
  it('returns the configured models without asking the upstream', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { models: ['a', 'b'] }));
    expect(await provider.listModels()).toEqual([
      { id: 'a', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
      { id: 'b', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
    ]);
    expect(upstream.requests).toHaveLength(0);
  });

  it('discovers models with GET /models and caches them', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const expected = [
      { id: 'llama-3.1-8b', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
      { id: 'mixtral-8x7b', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
    ];
    expect(await provider.listModels()).toEqual(expected);
    expect(await provider.listModels()).toEqual(expected);
    expect(upstream.requests.map((request) => `${request.method} ${request.path}`)).toEqual(['GET /v1/models']);
    expect(upstream.requests[0]!.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it('returns [] when the upstream is unreachable or answers an error', async () => {
    const down = createOpenAICompatibleProvider(upstreamConfig(await unusedBaseURL()));
    expect(await down.listModels()).toEqual([]);
    upstream.setModels({ status: 500 });
    const failing = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    expect(await failing.listModels()).toEqual([]);
  });
});

describe('checkAvailability', () => {
  it('is available when GET /models answers, and caches the answer', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    expect(await provider.checkAvailability()).toEqual({ available: true });
    expect(await provider.checkAvailability()).toEqual({ available: true });
    expect(upstream.requests).toHaveLength(1);
  });

  it('is unavailable with a reason when the upstream is down', async () => {
    const baseURL = await unusedBaseURL();
    const provider = createOpenAICompatibleProvider(upstreamConfig(baseURL));
    const availability = await provider.checkAvailability();
    expect(availability.available).toBe(false);
    expect(availability.reason).toMatch(new RegExp(`^GET ${baseURL}/models failed: .*ECONNREFUSED`));
  });

  it('is unavailable on 401 without revealing the key', async () => {
    const guarded = await startFakeOpenAIUpstream({ apiKey: 'the-right-key' });
    try {
      const provider = createOpenAICompatibleProvider(upstreamConfig(guarded.baseURL));
      const availability = await provider.checkAvailability();
      expect(availability).toEqual({
        available: false,
        reason: `GET ${guarded.baseURL}/models failed: HTTP 401: Incorrect API key provided.`,
      });
    } finally {
      await guarded.close();
    }
  });

  it('is unavailable on 5xx', async () => {
    upstream.setModels({ status: 503, message: 'maintenance' });
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    expect(await provider.checkAvailability()).toEqual({
      available: false,
      reason: `GET ${upstream.baseURL}/models failed: HTTP 503: maintenance`,
    });
  });

  it('counts a 404 on /models as available only when models are configured', async () => {
    upstream.setModels({ status: 404 });
    const configured = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { models: ['m'] }));
    expect(await configured.checkAvailability()).toEqual({ available: true });
    const discovering = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL));
    const availability = await discovering.checkAvailability();
    expect(availability.available).toBe(false);
    expect(availability.reason).toContain('HTTP 404');
  });

  it('gives up after min(connectTimeoutMs, 5000) ms', async () => {
    upstream.setModels('hang');
    const provider = createOpenAICompatibleProvider(upstreamConfig(upstream.baseURL, { connectTimeoutMs: 150 }));
    const availability = await provider.checkAvailability();
    expect(availability).toEqual({ available: false, reason: `GET ${upstream.baseURL}/models failed: no response within 150 ms` });
    await upstream.waitForClientClose();
  });
});
