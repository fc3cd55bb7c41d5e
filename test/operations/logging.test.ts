/**
 * Structured logs: JSON lines from pino captured in memory. Every HTTP request gets a request id
 * (the client's `x-request-id` when acceptable, echoed back); generation lines carry the generation
 * id (and the request id that started it); API keys and authorization headers never appear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { graphqlRequest } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { memoryLog } from '../helpers/memory-log.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { createLogger, createYogaLogger } from '../../src/operations/logger.js';

const UPSTREAM_KEY = 'sk-upstream-secret-for-logs-0123456789';
const CLIENT_TOKEN = 'client-bearer-secret-0123456789';
const BODY_KEY = 'sk-body-secret-0123456789';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
const logs = memoryLog();

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp(
    {
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
        { id: 'fake', baseURL: upstream.baseURL, apiKey: UPSTREAM_KEY, models: ['stream', 'server-error'] },
      ]),
      BREAKER_ENABLED: 'false',
    },
    { logger: createLogger({ level: 'info', destination: logs.stream }) },
  );
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

describe('structured logs', () => {
  it('a REST generation: request id echoed and logged, generation lines with the generation id, no secret anywhere', async () => {
    const response = await postJson(
      started.url,
      '/v1/chat/completions',
      { model: 'fake:stream', messages: [{ role: 'user', content: 'hello' }], api_key: BODY_KEY },
      { headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_TOKEN}`, 'x-request-id': 'request-from-client-1' } },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('request-from-client-1');
    const body = (await response.json()) as { id: string };
    const generationId = body.id.replace(/^chatcmpl-/, '');
    // The upstream got a key (the configured one, or the request's own `api_key` where that is supported),
    // so the secrets were in use while the logs were written.
    expect([`Bearer ${UPSTREAM_KEY}`, `Bearer ${BODY_KEY}`]).toContain(upstream.chatRequests().at(-1)?.headers.authorization);

    const failed = await postJson(started.url, '/v1/chat/completions', { model: 'fake:server-error', messages: [{ role: 'user', content: 'x' }] });
    expect(failed.status).toBe(502);
    const failedId = failed.headers.get('x-request-id');
    expect(failedId).toMatch(/^[0-9a-f-]{36}$/);
    await failed.json();
    await new Promise((resolve) => setTimeout(resolve, 20)); // the request line is written when the response closes

    const lines = logs.lines();
    for (const line of lines) expect(line).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) });
    expect(lines.find((line) => line.msg === 'request completed' && line.requestId === 'request-from-client-1')).toMatchObject({
      method: 'POST',
      path: '/v1/chat/completions',
      route: 'rest_chat',
      status: 200,
      durationMs: expect.any(Number),
    });
    expect(lines.find((line) => line.msg === 'generation started' && line.generationId === generationId)).toMatchObject({
      level: 'info',
      requestId: 'request-from-client-1',
      kind: 'chat',
      provider: 'fake',
      model: 'stream',
    });
    expect(lines.find((line) => line.msg === 'generation completed' && line.generationId === generationId)).toMatchObject({
      requestId: 'request-from-client-1',
      status: 'completed',
      durationMs: expect.any(Number),
      timeToFirstContentMs: expect.any(Number),
      usage: { completionTokens: expect.any(Number) },
    });
    expect(lines.find((line) => line.msg === 'generation failed' && line.requestId === failedId)).toMatchObject({
      level: 'warn',
      generationId: expect.any(String),
      status: 'failed',
      errorCode: 'UPSTREAM_ERROR',
    });

    const text = logs.text();
    expect(text).not.toContain(UPSTREAM_KEY);
    expect(text).not.toContain(CLIENT_TOKEN);
    expect(text).not.toContain(BODY_KEY);
  });

  it('makes its own request id when the client sends none or an unusable one, also for GraphQL', async () => {
    const forged = await fetch(`${started.url}/v1/models`, { headers: { 'x-request-id': 'not acceptable "quoted" id' } });
    await forged.json();
    expect(forged.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const graphql = await fetch(started.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    await graphql.json();
    const graphqlId = graphql.headers.get('x-request-id');
    expect(graphqlId).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(logs.lines().find((line) => line.requestId === graphqlId)).toMatchObject({ msg: 'request completed', route: 'graphql', status: 200 });
  });

  it('GraphQL generations are logged with their generation id', async () => {
    const result = await graphqlRequest(started.graphqlUrl, 'mutation { startChatCompletion(input: { provider: "fake", model: "stream", messages: [{ role: USER, content: "hi" }] }) { id } }');
    const generationId = result.data.startChatCompletion.id as string;
    for (let tries = 0; tries < 100 && !logs.lines().some((line) => line.generationId === generationId && line.msg === 'generation completed'); tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const lines = logs.lines().filter((line) => line.generationId === generationId);
    expect(lines.map((line) => line.msg)).toEqual(['generation started', 'generation completed']);
    expect(lines[0]!.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('redaction', () => {
  it('removes keys, tokens and authorization headers wherever code logs them', () => {
    const destination = memoryLog();
    const logger = createLogger({ destination: destination.stream });
    logger.info(
      {
        apiKey: 'secret-1',
        api_key: 'secret-2',
        token: 'secret-3',
        headers: { authorization: 'Bearer secret-4', accept: 'application/json' },
        upstream: { id: 'groq', apiKey: 'secret-5', token: 'secret-6' },
        request: { headers: { authorization: 'Bearer secret-7' } },
        authorization: 'Bearer secret-8',
      },
      'something with secrets',
    );
    const text = destination.text();
    for (let index = 1; index <= 8; index += 1) expect(text).not.toContain(`secret-${index}`);
    const [line] = destination.lines();
    expect(line).toMatchObject({ level: 'info', msg: 'something with secrets', apiKey: '[Redacted]', headers: { authorization: '[Redacted]', accept: 'application/json' } });
    expect(line!.upstream).toEqual({ id: 'groq', apiKey: '[Redacted]', token: '[Redacted]' });
  });

  it("Yoga's logger keeps messages and errors, and drops the other arguments (request parameters)", () => {
    const destination = memoryLog();
    const yogaLogger = createYogaLogger(createLogger({ destination: destination.stream }));
    yogaLogger.error(new Error('resolver exploded'));
    yogaLogger.warn('something odd', { query: '{ secretField }', variables: { apiKey: 'secret-9' } });
    yogaLogger.debug('not written at info');
    const lines = destination.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'error', component: 'graphql-yoga', msg: 'resolver exploded', err: { message: 'resolver exploded' } });
    expect(lines[1]).toMatchObject({ level: 'warn', component: 'graphql-yoga', msg: 'something odd' });
    expect(destination.text()).not.toContain('secret');
  });
});
