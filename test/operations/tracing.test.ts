/**
 * OpenTelemetry tracing end to end: the real app exports to a local OTLP/HTTP receiver that
 * decodes what it gets (JSON and protobuf); chats go through REST with `fetch` (continuing the
 * caller's `traceparent`), a GraphQL mutation, the real graphql-ws client, and roles api + worker
 * on real Redis, against fake OpenAI-compatible upstreams over real HTTP, one of which fails so
 * fallback shows, and images through a fake Gradio space. Without an endpoint nothing is traced
 * and upstream requests carry no `traceparent`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/config/setting.js';
import { CHAT_COMPLETION_SUBSCRIPTION, START_CHAT_COMPLETION } from '../helpers/chat-operations.js';
import { startAppProcess } from '../helpers/app-process.js';
import { startFakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { OTLP_SPAN_KIND, OTLP_STATUS, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { startApp, testAppDefaults, type StartedApp } from '../helpers/start-app.js';

// The SDK's batch processor reads its delay from the environment: export within 20 ms, not 5 s.
process.env.OTEL_BSP_SCHEDULE_DELAY = '20';

let alpha: FakeOpenAIUpstream;
let beta: FakeOpenAIUpstream;

beforeAll(async () => {
  [alpha, beta] = await Promise.all([startFakeOpenAIUpstream(), startFakeOpenAIUpstream()]);
});
afterAll(async () => {
  await Promise.all([alpha?.close(), beta?.close()]);
});

/** Upstreams: `alpha` answers 503 to `broken`, `beta` streams four tokens; the alias `story` tries alpha, then beta. */
function upstreamSettings(): Record<string, string> {
  return {
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'alpha', baseURL: alpha.baseURL, models: ['server-error?status=503'] },
      { id: 'beta', baseURL: beta.baseURL, models: ['stream?tokens=4'] },
    ]),
    MODEL_ALIASES: JSON.stringify({ story: ['alpha:server-error?status=503', 'beta:stream?tokens=4'] }),
    BREAKER_ENABLED: 'false',
  };
}

/** The W3C `traceparent` header of an upstream request, split. */
function parseTraceparent(header: string | string[] | undefined): { traceId: string; parentId: string } {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(header));
  if (!match) throw new Error(`not a traceparent: ${String(header)}`);
  return { traceId: match[1]!, parentId: match[2]! };
}

function childrenOf(spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((span) => span.parentSpanId === parent.spanId && span.traceId === parent.traceId);
}

describe('tracing over OTLP/HTTP JSON', () => {
  let receiver: OtlpReceiver;
  let started: StartedApp;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    started = await startApp({ ...upstreamSettings(), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
  });
  afterAll(async () => {
    await started?.stop();
    await receiver?.close();
  });

  it('traces a REST chat: the caller’s trace, the generation, each attempt, the upstream requests', async () => {
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const alphaBefore = alpha.chatRequests().length;
    const betaBefore = beta.chatRequests().length;
    const response = await fetch(`${started.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpanId}-01` },
      body: JSON.stringify({
        model: 'story',
        messages: [{ role: 'user', content: 'Tell me a story.' }],
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 50,
        temperature: 0.5,
      }),
    });
    expect(response.status).toBe(200);
    const body = await response.text();
    const usage = body
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)) as { usage?: { prompt_tokens: number; completion_tokens: number } })
      .find((chunk) => chunk.usage)?.usage;
    expect(usage).toBeDefined();

    const spans = await receiver.waitFor((received) =>
      received.some((span) => span.traceId === traceId && span.kind === OTLP_SPAN_KIND.SERVER && span.attributes['http.response.status_code'] !== undefined),
    );
    const inTrace = spans.filter((span) => span.traceId === traceId);

    const server = inTrace.find((span) => span.kind === OTLP_SPAN_KIND.SERVER)!;
    expect(server.name).toBe('POST /v1/chat/completions');
    expect(server.parentSpanId).toBe(callerSpanId);
    expect(server.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/chat/completions',
      'url.path': '/v1/chat/completions',
      'http.response.status_code': 200,
    });
    expect(server.resource['service.name']).toBe('graphql-ai-gateway');
    expect(server.contentType).toBe('application/json');

    const [generation, ...others] = childrenOf(inTrace, server);
    expect(others).toEqual([]);
    expect(generation!.name).toBe('chat story');
    expect(generation!.kind).toBe(OTLP_SPAN_KIND.INTERNAL);
    expect(generation!.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'story',
      'gen_ai.request.max_tokens': 50,
      'gen_ai.request.temperature': 0.5,
      'gen_ai.response.model': 'stream?tokens=4',
      'gen_ai.provider.name': 'beta',
      'gen_ai.system': 'beta',
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': usage!.prompt_tokens,
      'gen_ai.usage.output_tokens': usage!.completion_tokens,
      'gateway.generation.status': 'completed',
    });
    expect(generation!.status.code).toBe(OTLP_STATUS.UNSET);
    const firstToken = generation!.events.find((event) => event.name === 'gen_ai.first_token');
    expect(firstToken?.attributes['gen_ai.server.time_to_first_token']).toBeGreaterThan(0);

    const attempts = childrenOf(inTrace, generation!).sort((a, b) => Number(a.attributes['gateway.attempt.number']) - Number(b.attributes['gateway.attempt.number']));
    expect(attempts.map((span) => [span.name, span.attributes['gen_ai.provider.name'], span.attributes['gateway.attempt.number'], span.status.code])).toEqual([
      ['chat server-error?status=503', 'alpha', 1, OTLP_STATUS.ERROR],
      ['chat stream?tokens=4', 'beta', 2, OTLP_STATUS.UNSET],
    ]);
    expect(attempts[0]!.attributes['error.type']).toBeTypeOf('string');
    expect(attempts.every((span) => span.kind === OTLP_SPAN_KIND.CLIENT)).toBe(true);

    // Each upstream got a traceparent naming its attempt's span: an upstream that traces continues the trace there.
    const upstreamRequests = [alpha.chatRequests()[alphaBefore]!, beta.chatRequests()[betaBefore]!];
    for (const [index, request] of upstreamRequests.entries()) {
      const { traceId: sentTraceId, parentId } = parseTraceparent(request.headers.traceparent);
      expect(sentTraceId).toBe(traceId);
      expect(parentId, `upstream ${index + 1}'s parent span`).toBe(attempts[index]!.spanId);
    }
  });

  it('makes the generation a GraphQL mutation starts a child of the POST /graphql span', async () => {
    const result = await graphqlRequest<{ startChatCompletion: { id: string } }>(started.graphqlUrl, START_CHAT_COMPLETION, {
      input: { model: 'beta:stream?tokens=4', messages: [{ role: 'USER', content: 'Hi' }] },
    });
    const generationId = result.data!.startChatCompletion.id;
    const spans = await receiver.waitFor((received) => received.some((span) => span.attributes['gen_ai.response.id'] === generationId));
    const generation = spans.find((span) => span.attributes['gen_ai.response.id'] === generationId)!;
    expect(generation.attributes['gateway.generation.id']).toBe(generationId);
    const parent = spans.find((span) => span.spanId === generation.parentSpanId);
    expect(parent?.name).toBe('POST /graphql');
    expect(parent?.attributes['http.route']).toBe('/graphql');
  });

  it('gives a request without traceparent a trace of its own, with its status', async () => {
    const response = await fetch(`${started.url}/v1/models/not-a-model`);
    expect(response.status).toBe(404);
    const spans = await receiver.waitFor((received) => received.some((span) => span.name === 'GET /v1/models/{model}'));
    const span = spans.find((candidate) => candidate.name === 'GET /v1/models/{model}')!;
    expect(span.parentSpanId).toBe('');
    expect(span.attributes['http.response.status_code']).toBe(404);
    expect(span.attributes['url.path']).toBe('/v1/models/not-a-model');
  });
});

describe('tracing over OTLP/HTTP protobuf (the default)', () => {
  it('traces a chat over graphql-ws as a trace of its own', async () => {
    const receiver = await startOtlpReceiver();
    const started = await startApp({ ...upstreamSettings(), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint });
    const client = createWebSocketClient(started.webSocketUrl);
    try {
      const results = await collectWebSocket(client, CHAT_COMPLETION_SUBSCRIPTION, {
        input: { model: 'beta:stream?tokens=4', messages: [{ role: 'USER', content: 'Hi' }] },
      });
      const completed = results.map((result) => result.data!.chatCompletion as { __typename: string; generationId?: string }).at(-1)!;
      expect(completed.__typename).toBe('ChatCompletionCompleted');
      const spans = await receiver.waitFor((received) => received.some((span) => span.attributes['gateway.generation.status'] === 'completed'));
      const generation = spans.find((span) => span.attributes['gateway.generation.status'] === 'completed')!;
      expect(generation.contentType).toBe('application/x-protobuf');
      expect(generation.name).toBe('chat beta:stream?tokens=4');
      expect(generation.parentSpanId).toBe('');
      expect(generation.attributes['gen_ai.response.model']).toBe('stream?tokens=4');
      await receiver.waitFor((received) => childrenOf(received, generation).length === 1);
      expect(childrenOf(spans, generation).map((span) => span.attributes['gen_ai.provider.name'])).toEqual(['beta']);
    } finally {
      await client.dispose();
      await started.stop();
      await receiver.close();
    }
  });
});

describe('images', () => {
  it('traces an image generation whose Gradio space requests carry the attempt’s traceparent', async () => {
    const space = await startFakeGradioSpace();
    const receiver = await startOtlpReceiver();
    const started = await startApp({
      HF_SPACES_ENABLED: 'true',
      HF_FLUX_SCHNELL_URL: space.baseURL,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    try {
      const response = await fetch(`${started.url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'flux-1-schnell', prompt: 'a red fox', size: '64x48', response_format: 'b64_json' }),
      });
      expect(response.status).toBe(200);
      const spans = await receiver.waitFor((received) => received.some((span) => span.attributes['gen_ai.operation.name'] === 'generate_content' && span.kind === OTLP_SPAN_KIND.INTERNAL));
      const generation = spans.find((span) => span.attributes['gen_ai.operation.name'] === 'generate_content' && span.kind === OTLP_SPAN_KIND.INTERNAL)!;
      expect(generation.attributes).toMatchObject({ 'gen_ai.output.type': 'image', 'gen_ai.provider.name': 'hf-space', 'gateway.image.count': 1 });
      await receiver.waitFor((received) => childrenOf(received, generation).length === 1);
      const [attempt] = childrenOf(receiver.spans, generation);
      expect(space.requests.length).toBeGreaterThan(0);
      for (const request of space.requests) expect(parseTraceparent(request.headers.traceparent)).toEqual({ traceId: generation.traceId, parentId: attempt!.spanId });
    } finally {
      await started.stop();
      await Promise.all([space.close(), receiver.close()]);
    }
  });
});

describe('roles api and worker (real Redis)', () => {
  it('continues the trace of the request that queued a generation on the worker that runs it', async () => {
    const receiver = await startOtlpReceiver();
    const settings = {
      ...upstreamSettings(),
      REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15',
      RATE_LIMIT_PER_MINUTE: '0',
      QUEUE_PREFIX: `test-tracing-${process.pid}-${Date.now()}`,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '20',
    };
    const [api, worker] = await Promise.all([
      startApp({ ...settings, ROLE: 'api', OTEL_SERVICE_NAME: 'gateway-api' }),
      startAppProcess({ ...settings, ROLE: 'worker', OTEL_SERVICE_NAME: 'gateway-worker' }),
    ]);
    try {
      const traceId = randomBytes(16).toString('hex');
      const response = await fetch(api.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
        body: JSON.stringify({ query: START_CHAT_COMPLETION, variables: { input: { model: 'beta:stream?tokens=4', messages: [{ role: 'USER', content: 'Hi' }] } } }),
      });
      expect(response.status).toBe(200);
      const spans = await receiver.waitFor(
        (received) => received.some((span) => span.traceId === traceId && span.resource['service.name'] === 'gateway-worker' && span.name === 'chat beta:stream?tokens=4') &&
          received.some((span) => span.traceId === traceId && span.name === 'POST /graphql'),
        30_000,
      );
      const request = spans.find((span) => span.traceId === traceId && span.name === 'POST /graphql')!;
      expect(request.resource['service.name']).toBe('gateway-api');
      const generation = spans.find((span) => span.traceId === traceId && span.resource['service.name'] === 'gateway-worker' && span.name === 'chat beta:stream?tokens=4')!;
      expect(generation.parentSpanId).toBe(request.spanId);
      expect(generation.attributes['gateway.generation.status']).toBe('completed');
    } finally {
      await worker.kill();
      await api.stop();
      await receiver.close();
    }
  }, 60_000);
});

describe('without an endpoint', () => {
  it('traces nothing: upstream requests carry no traceparent', async () => {
    const started = await startApp(upstreamSettings());
    try {
      const before = beta.chatRequests().length;
      const response = await fetch(`${started.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` },
        body: JSON.stringify({ model: 'beta:stream?tokens=4', messages: [{ role: 'user', content: 'Hi' }] }),
      });
      expect(response.status).toBe(200);
      const request = beta.chatRequests()[before]!;
      expect(request.headers.traceparent).toBeUndefined();
    } finally {
      await started.stop();
    }
  });
});

describe('tracing settings', () => {
  const load = (settings: Record<string, string>) => loadConfig({ ...testAppDefaults(), ...settings }).tracing;

  it('sends to {endpoint}/v1/traces, or to the traces endpoint as given', () => {
    expect(load({})).toBeUndefined();
    expect(load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      tracesEndpoint: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      serviceName: 'graphql-ai-gateway',
    });
    expect(load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom', OTEL_SERVICE_NAME: 'edge' })).toEqual({
      tracesEndpoint: 'http://b:4318/custom',
      protocol: 'http/protobuf',
      serviceName: 'edge',
    });
    expect(load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
  });

  it('refuses grpc and unknown protocols with one line', () => {
    expect(() => load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(ConfigError);
    expect(() => load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported/);
    expect(() => load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' })).toThrow(
      /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be http\/protobuf or http\/json/,
    );
  });
});
