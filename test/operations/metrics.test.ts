/**
 * `GET /metrics`: Prometheus text with the gateway's metrics (requests, generations, time to first
 * token, tokens per second, subscriptions, running generations, queue depth, circuit state) next to
 * the default Node.js metrics, bounded labels, no secrets; `METRICS_ENABLED=false` turns it off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_COMPLETION_SUBSCRIPTION, START_CHAT_COMPLETION } from '../helpers/chat-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { methodLabel, routeLabel } from '../../src/operations/metrics.js';

const UPSTREAM_KEY = 'sk-upstream-secret-for-metrics-0123456789';
const PROMPT = 'a prompt that must never become a label';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'fake', baseURL: upstream.baseURL, apiKey: UPSTREAM_KEY, models: ['stream', 'endless?gapMs=10'] },
      { id: 'broken', baseURL: upstream.baseURL, models: ['server-error'] },
    ]),
    BREAKER_FAILURE_THRESHOLD: '1',
    LLAMA_SEQUENCES: '1',
  });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

/** The metrics text. */
async function scrape(url = started.url): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** The value of one sample, e.g. `gateway_running_generations` or `name{a="b"}` (labels in the order the registry prints them). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  it('counts requests and generations, times the first token and the token rate, and never shows a secret', async () => {
    const rest = await postJson(started.url, '/v1/chat/completions', { model: 'fake:stream', messages: [{ role: 'user', content: PROMPT }] });
    expect(rest.status).toBe(200);
    await rest.json();
    const failed = await postJson(started.url, '/v1/chat/completions', { model: 'broken:server-error', messages: [{ role: 'user', content: PROMPT }] });
    expect(failed.status).toBe(502);
    await failed.json();
    await fetch(`${started.url}/v1/models`).then((response) => response.json());
    await fetch(`${started.url}/healthz`).then((response) => response.text());

    const text = await scrape();
    expect(sample(text, 'gateway_http_requests_total{route="rest_chat",method="POST",status="200"}')).toBe(1);
    expect(sample(text, 'gateway_http_requests_total{route="rest_chat",method="POST",status="502"}')).toBe(1);
    expect(sample(text, 'gateway_http_requests_total{route="rest_models",method="GET",status="200"}')).toBe(1);
    expect(sample(text, 'gateway_http_requests_total{route="healthz",method="GET",status="200"}')).toBe(1);
    expect(sample(text, 'gateway_generations_total{kind="chat",provider="fake",model="stream",status="completed"}')).toBe(1);
    expect(sample(text, 'gateway_generations_total{kind="chat",provider="broken",model="server-error",status="failed"}')).toBe(1);
    expect(sample(text, 'gateway_generation_time_to_first_token_seconds_count{kind="chat",provider="fake"}')).toBe(1);
    expect(sample(text, 'gateway_generation_tokens_per_second_count{provider="fake"}')).toBe(1);
    expect(sample(text, 'gateway_generation_tokens_per_second_sum{provider="fake"}')).toBeGreaterThan(0);
    expect(sample(text, 'gateway_running_generations')).toBe(0);
    expect(sample(text, 'gateway_active_subscriptions')).toBe(0);
    // The failure opened the circuit of `broken` (threshold 1); `fake` is closed.
    expect(sample(text, 'gateway_provider_circuit_state{provider="broken"}')).toBe(2);
    expect(sample(text, 'gateway_provider_circuit_state{provider="fake"}')).toBe(0);
    expect(sample(text, 'gateway_queue_depth{provider="llama-cpp"}')).toBe(0);
    // Default Node.js metrics are there too.
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    // Labels hold no secrets and no free text.
    expect(text).not.toContain(UPSTREAM_KEY);
    expect(text).not.toContain(PROMPT);
    // `/metrics` itself is counted (after this scrape).
    expect(sample(await scrape(), 'gateway_http_requests_total{route="metrics",method="GET",status="200"}')).toBeGreaterThanOrEqual(1);
  });

  it('shows running generations and open subscriptions while they last', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    const input = { provider: 'fake', model: 'endless?gapMs=10', messages: [{ role: 'USER', content: 'go' }] };
    const start = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, { input });
    const generationId = start.data.startChatCompletion.id as string;
    const streaming = collectWebSocket(client, CHAT_COMPLETION_SUBSCRIPTION, { input }); // a second, owned generation
    try {
      let text = '';
      for (let tries = 0; tries < 200; tries += 1) {
        text = await scrape();
        if (sample(text, 'gateway_active_subscriptions') === 1 && sample(text, 'gateway_running_generations') === 2) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(sample(text, 'gateway_active_subscriptions')).toBe(1);
      expect(sample(text, 'gateway_running_generations')).toBe(2);
    } finally {
      await started.app.generations.cancel(generationId);
      client.dispose();
      await streaming.catch(() => {});
    }
    let text = '';
    for (let tries = 0; tries < 200; tries += 1) {
      text = await scrape();
      if (sample(text, 'gateway_active_subscriptions') === 0 && sample(text, 'gateway_running_generations') === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(sample(text, 'gateway_active_subscriptions')).toBe(0);
    expect(sample(text, 'gateway_running_generations')).toBe(0);
    expect(sample(text, 'gateway_generations_total{kind="chat",provider="fake",model="endless?gapMs=10",status="cancelled"}')).toBe(2);
  });

  it('shows llama-cpp requests waiting for a free sequence as queue depth', async () => {
    const input = (seed: number) => ({ model: 'llama-cpp:stories260K', messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 400, seed });
    const generations = await Promise.all([1, 2, 3].map((seed) => graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, { input: input(seed) })));
    const ids = generations.map((result) => result.data.startChatCompletion.id as string);
    let deepest = 0;
    for (let tries = 0; tries < 1000 && deepest < 2; tries += 1) {
      deepest = Math.max(deepest, sample(await scrape(), 'gateway_queue_depth{provider="llama-cpp"}') ?? 0);
      if (ids.every((id) => started.app.generations.get(id)?.status !== 'running')) break;
    }
    await Promise.all(ids.map((id) => started.app.generations.cancel(id)));
    // One sequence, three generations: while the first runs, the others wait.
    expect(deepest).toBeGreaterThanOrEqual(1);
    expect(sample(await scrape(), 'gateway_queue_depth{provider="llama-cpp"}')).toBe(0);
  });
});

describe('metrics settings and labels', () => {
  it('METRICS_ENABLED=false: no /metrics', async () => {
    const plain = await startApp({ METRICS_ENABLED: 'false' });
    try {
      const response = await fetch(`${plain.url}/metrics`);
      expect(response.status).toBe(404);
      await response.text();
    } finally {
      await plain.stop();
    }
  });

  it('routes and methods map to a fixed set of label values', () => {
    expect(routeLabel('/graphql')).toBe('graphql');
    expect(routeLabel('/v1/chat/completions')).toBe('rest_chat');
    expect(routeLabel('/v1/images/generations')).toBe('rest_images');
    expect(routeLabel('/v1/models/llama-cpp%3Astories260K')).toBe('rest_models');
    expect(routeLabel('/v1/providers/fake')).toBe('rest_providers');
    expect(routeLabel('/images/abc.png')).toBe('images');
    expect(routeLabel('/')).toBe('page');
    expect(routeLabel('/assets/graphql-ws.min.js')).toBe('page');
    expect(routeLabel('/healthz')).toBe('healthz');
    expect(routeLabel('/readyz')).toBe('readyz');
    expect(routeLabel('/metrics')).toBe('metrics');
    expect(routeLabel('/wp-admin/anything-a-scanner-tries')).toBe('other');
    expect(methodLabel('GET')).toBe('GET');
    expect(methodLabel('PROPFIND')).toBe('other');
  });
});
