/**
 * The circuit breaker shared through one real Redis (127.0.0.1:6379, database 15).
 * - Two app instances with one fake OpenAI-compatible upstream whose models fail (the model name is
 *   the scenario): failures caused through A and B together open the circuit for both (`providers`,
 *   REST `/v1/providers/{id}`, `/metrics`), a 429's Retry-After seen by A opens it on B, and the
 *   half-open trial is one request across both instances (a cancelled trial frees it, a success closes
 *   the circuit everywhere).
 * - Two `RedisCircuitBreaker`s on two connections with one clock (the rules, step by step), and one
 *   whose Redis goes away (a TCP proxy in between is closed): it answers from its own view, warns once,
 *   and uses the shared state again once Redis is back.
 * Provider ids and key prefixes are unique per run; the keys are deleted at the end.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/operations/logger.js';
import { BREAKER_KEY_PREFIX, RedisCircuitBreaker } from '../../src/scale-out/redis-circuit-breaker.js';
import { CANCEL_GENERATION, CHAT_COMPLETION_SUBSCRIPTION, type ChatEvent } from '../helpers/chat-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const RUN = `${process.pid}-${Date.now()}`;
let admin: Redis;

beforeAll(() => {
  admin = new Redis(REDIS_URL);
});

afterAll(async () => {
  await admin?.quit();
});

/** Deletes every key matching `pattern` (SCAN, so the test's own keys only). */
async function deleteKeys(pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

describe('two instances share the circuits', () => {
  const FLAKY = `flaky-${RUN}`;
  const LIMITED = `limited-${RUN}`;
  const TRIAL = `trial-${RUN}`;
  let upstream: FakeOpenAIUpstream;
  let first: StartedApp;
  let second: StartedApp;
  let clientOfFirst: Client;
  let clientOfSecond: Client;

  beforeAll(async () => {
    upstream = await startFakeOpenAIUpstream({ tokenCount: 3 });
    const settings = {
      REDIS_URL,
      BREAKER_FAILURE_THRESHOLD: '3',
      BREAKER_COOLDOWN_MS: '600000',
      // Without keys every start here is `ip:127.0.0.1`, whose budget Redis shares with every other test app on it.
      RATE_LIMIT_PER_MINUTE: '0',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
        { id: FLAKY, baseURL: upstream.baseURL, models: ['server-error', 'stream?tokens=3'] },
        { id: LIMITED, baseURL: upstream.baseURL, models: ['rate-limited?retryAfterSeconds=120'] },
        { id: TRIAL, baseURL: upstream.baseURL, models: ['rate-limited?retryAfterSeconds=1', 'endless?gapMs=20', 'stream?tokens=3'] },
      ]),
    };
    [first, second] = await Promise.all([startApp(settings), startApp(settings)]);
    clientOfFirst = createWebSocketClient(first.webSocketUrl);
    clientOfSecond = createWebSocketClient(second.webSocketUrl);
  });

  afterAll(async () => {
    await Promise.all([clientOfFirst?.dispose(), clientOfSecond?.dispose()]);
    await Promise.all([first?.stop(), second?.stop()]);
    await upstream?.close();
    await admin.del(...[FLAKY, LIMITED, TRIAL].map((id) => `${BREAKER_KEY_PREFIX}${id}`));
  });

  /** One chat over graphql-ws, to its terminal event. */
  async function chat(client: Client, provider: string, model: string): Promise<ChatEvent[]> {
    const results = await collectWebSocket(client, CHAT_COMPLETION_SUBSCRIPTION, {
      input: { provider, model, messages: [{ role: 'USER', content: 'go' }] },
    });
    for (const result of results) expect(result.errors).toBeUndefined();
    return results.map((result) => result.data!.chatCompletion as ChatEvent);
  }

  /** The `providers` entry of one provider on an instance. */
  async function providerOn(app: StartedApp, id: string): Promise<{ id: string; available: boolean; unavailableReason: string | null }> {
    const response = await graphqlRequest(app.graphqlUrl, '{ providers { id available unavailableReason } }');
    expect(response.errors).toBeUndefined();
    return response.data.providers.find((provider: { id: string }) => provider.id === id);
  }

  /** The value of `gateway_provider_circuit_state` for a provider on an instance (0 closed, 1 half-open, 2 open). */
  async function circuitGauge(app: StartedApp, id: string): Promise<number | undefined> {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    const series = `gateway_provider_circuit_state{provider="${id}"} `;
    const line = text.split('\n').find((candidate) => candidate.startsWith(series));
    return line === undefined ? undefined : Number(line.slice(series.length));
  }

  it('opens for both once failures through A and B add up to the threshold, and both skip the provider', async () => {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const events = await chat(clientOfFirst, FLAKY, 'server-error');
      expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'UPSTREAM_ERROR' } });
    }
    // Two failures in a row, all on A: below the threshold everywhere.
    expect(await providerOn(second, FLAKY)).toMatchObject({ available: true });
    expect(await circuitGauge(second, FLAKY)).toBe(0);

    await chat(clientOfSecond, FLAKY, 'server-error'); // the third, through B: neither instance alone saw three
    for (const app of [first, second]) {
      const entry = await providerOn(app, FLAKY);
      expect(entry.available).toBe(false);
      expect(entry.unavailableReason).toMatch(/^circuit open after 3 failure\(s\) in a row \(last: UPSTREAM_ERROR: .*\); retried after \S+$/);
      expect(await circuitGauge(app, FLAKY)).toBe(2);
    }
    const rest = (await (await fetch(`${second.url}/v1/providers/${FLAKY}`)).json()) as { available: boolean; unavailable_reason: string };
    expect(rest).toMatchObject({ available: false, unavailable_reason: expect.stringMatching(/^circuit open after 3 failure/) });

    const upstreamCalls = upstream.chatRequests().length;
    for (const client of [clientOfFirst, clientOfSecond]) {
      const events = await chat(client, FLAKY, 'stream?tokens=3');
      expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'PROVIDER_UNAVAILABLE', provider: FLAKY } });
    }
    expect(upstream.chatRequests().length).toBe(upstreamCalls);

    const key = `${BREAKER_KEY_PREFIX}${FLAKY}`;
    const ttl = await admin.pttl(key);
    expect(ttl).toBeGreaterThan(600_000); // the open period, then the idle expiry: the key never outlives its use
    expect(ttl).toBeLessThanOrEqual(600_000 + 3_600_000);
  });

  it("opens on B for as long as a 429's Retry-After that A received says", async () => {
    const events = await chat(clientOfFirst, LIMITED, 'rate-limited?retryAfterSeconds=120');
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'RATE_LIMITED' } });
    const entry = await providerOn(second, LIMITED);
    expect(entry.available).toBe(false);
    const retryAt = Date.parse(/retried after (\S+)$/.exec(entry.unavailableReason!)![1]!);
    expect(retryAt - Date.now()).toBeGreaterThan(100_000);
    expect(retryAt - Date.now()).toBeLessThanOrEqual(120_000);
  });

  it('lets one trial through across both instances; a cancelled trial frees it, a successful one closes the circuit everywhere', async () => {
    await chat(clientOfFirst, TRIAL, 'rate-limited?retryAfterSeconds=1'); // open for 1 s, then half-open
    await expect.poll(() => providerOn(second, TRIAL), { timeout: 10_000, interval: 100 }).toMatchObject({ available: true });
    expect(await circuitGauge(second, TRIAL)).toBe(1);

    // The trial runs on A (an endless stream) ...
    const trialEvents: ChatEvent[] = [];
    let firstTokenArrived!: () => void;
    const firstToken = new Promise<void>((resolve) => (firstTokenArrived = resolve));
    const trialEnded = new Promise<void>((resolve, reject) => {
      clientOfFirst.subscribe(
        {
          query: CHAT_COMPLETION_SUBSCRIPTION,
          variables: { input: { provider: TRIAL, model: 'endless?gapMs=20', messages: [{ role: 'USER', content: 'go' }] } },
        },
        {
          next: (result) => {
            const event = result.data!.chatCompletion as ChatEvent;
            trialEvents.push(event);
            if (event.__typename === 'ChatTokenDelta') firstTokenArrived();
          },
          error: reject,
          complete: resolve,
        },
      );
    });
    await firstToken;

    // ... so B skips the provider without calling it.
    const upstreamCalls = upstream.chatRequests().length;
    const skipped = await chat(clientOfSecond, TRIAL, 'stream?tokens=3');
    expect(skipped.at(-1)).toMatchObject({
      __typename: 'GenerationFailed',
      error: { code: 'PROVIDER_UNAVAILABLE', message: expect.stringMatching(/trial request is in flight/) },
    });
    expect(upstream.chatRequests().length).toBe(upstreamCalls);

    // A cancellation says nothing about the provider: the next request may try.
    const cancelled = await graphqlRequest(first.graphqlUrl, CANCEL_GENERATION, { id: trialEvents[0]!.generationId });
    expect(cancelled.errors).toBeUndefined();
    await trialEnded;
    expect(trialEvents.at(-1)).toMatchObject({ __typename: 'GenerationCancelled' });

    const trial = await chat(clientOfSecond, TRIAL, 'stream?tokens=3');
    expect(trial.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted', text: 'Once upon a' });
    expect(await circuitGauge(first, TRIAL)).toBe(0);
    expect(await admin.exists(`${BREAKER_KEY_PREFIX}${TRIAL}`)).toBe(0);
  });
});

describe('RedisCircuitBreaker step by step (two instances, one clock)', () => {
  const keyPrefix = `${BREAKER_KEY_PREFIX}test-${RUN}:`;
  const upstreamError = { code: 'UPSTREAM_ERROR', message: 'upstream answered 500', provider: 'alpha' };
  let clock = Date.now();
  let clientOfFirst: Redis;
  let clientOfSecond: Redis;
  let first: RedisCircuitBreaker;
  let second: RedisCircuitBreaker;

  beforeAll(async () => {
    clientOfFirst = new Redis(REDIS_URL);
    clientOfSecond = new Redis(REDIS_URL);
    await Promise.all([clientOfFirst.ping(), clientOfSecond.ping()]);
    const options = { failureThreshold: 3, cooldownMs: 1_000, trialLeaseMs: 5_000, idleExpiryMs: 60_000, keyPrefix, now: () => clock };
    first = new RedisCircuitBreaker(clientOfFirst, options);
    second = new RedisCircuitBreaker(clientOfSecond, options);
  });

  afterAll(async () => {
    await deleteKeys(`${keyPrefix}*`);
    await Promise.all([clientOfFirst?.quit(), clientOfSecond?.quit()]);
  });

  /** Opens `providerId`'s circuit with three counted failures (two through the first instance, one through the second). */
  async function open(providerId: string): Promise<void> {
    await first.recordFailure(providerId, upstreamError);
    await first.recordFailure(providerId, upstreamError);
    await second.recordFailure(providerId, upstreamError);
  }

  it('adds up failures of both instances; the key expires after the open period plus the idle expiry', async () => {
    await first.recordFailure('alpha', upstreamError);
    await second.recordFailure('alpha', upstreamError);
    expect(await first.state('alpha')).toEqual({ state: 'closed', consecutiveFailures: 2, lastError: upstreamError });
    expect(await second.tryAcquire('alpha')).toBe(true);
    await first.recordFailure('alpha', upstreamError);
    for (const breaker of [first, second]) {
      expect(await breaker.state('alpha')).toEqual({ state: 'open', consecutiveFailures: 3, lastError: upstreamError, openUntil: new Date(clock + 1_000) });
      expect(await breaker.tryAcquire('alpha')).toBe(false);
      expect(await breaker.unavailableReason('alpha')).toMatch(/^circuit open after 3 failure\(s\) in a row \(last: UPSTREAM_ERROR: upstream answered 500\)/);
    }
    const ttl = await admin.pttl(`${keyPrefix}alpha`);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(61_000);
    expect(await first.state('never-failed')).toEqual({ state: 'closed', consecutiveFailures: 0 });
  });

  it('half-open: one trial among concurrent requests of both; a failed trial reopens, a lapsed lease lets another try, success closes for both', async () => {
    await open('beta');
    clock += 1_000;
    expect((await second.state('beta')).state).toBe('half-open');
    const answers = await Promise.all([first, second, first, second, first, second, first, second].map((breaker) => breaker.tryAcquire('beta')));
    expect(answers.filter(Boolean)).toHaveLength(1);

    await second.recordFailure('beta', upstreamError); // the trial failed
    expect(await first.state('beta')).toMatchObject({ state: 'open', consecutiveFailures: 4, openUntil: new Date(clock + 1_000) });

    clock += 1_000;
    expect(await second.tryAcquire('beta')).toBe(true);
    expect(await first.tryAcquire('beta')).toBe(false);
    clock += 5_000; // the trial's lease ran out (its instance may have died)
    expect(await first.tryAcquire('beta')).toBe(true);
    await first.recordSuccess('beta');
    expect(await second.state('beta')).toEqual({ state: 'closed', consecutiveFailures: 0 });
    expect(await admin.exists(`${keyPrefix}beta`)).toBe(0);
  });

  it('a success after a check that found no state sends nothing; one after a check that found state clears it for both', async () => {
    expect(await first.tryAcquire('delta')).toBe(true); // no circuit state in Redis
    await second.recordFailure('delta', upstreamError); // counted meanwhile by the other instance
    await first.recordSuccess('delta'); // nothing to clear as far as the first instance knew: no DEL
    expect(await second.state('delta')).toEqual({ state: 'closed', consecutiveFailures: 1, lastError: upstreamError });
    expect(await first.tryAcquire('delta')).toBe(true); // this check sees the failure
    await first.recordSuccess('delta');
    expect(await admin.exists(`${keyPrefix}delta`)).toBe(0);
    // A failure recorded here after a clean check is cleared by this instance's next success.
    expect(await first.tryAcquire('delta')).toBe(true);
    await first.recordFailure('delta', upstreamError);
    await first.recordSuccess('delta');
    expect(await second.state('delta')).toEqual({ state: 'closed', consecutiveFailures: 0 });
  });

  it('a failure that is not the provider’s (or a cancellation) frees the trial without counting', async () => {
    await open('gamma');
    clock += 1_000;
    expect(await first.tryAcquire('gamma')).toBe(true);
    expect(await second.tryAcquire('gamma')).toBe(false);
    await first.recordFailure('gamma', { code: 'CANCELLED', message: 'cancelled' });
    expect(await second.state('gamma')).toMatchObject({ state: 'half-open', consecutiveFailures: 3 });
    expect(await second.tryAcquire('gamma')).toBe(true);
  });

  it("a 429's Retry-After opens the circuit for every instance, longer than the cool-down", async () => {
    await first.recordFailure('delta', { code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 30_000 });
    expect(await second.state('delta')).toMatchObject({ state: 'open', consecutiveFailures: 1, openUntil: new Date(clock + 30_000) });
    clock += 1_000;
    expect(await second.tryAcquire('delta')).toBe(false);
    clock += 29_000;
    expect(await second.tryAcquire('delta')).toBe(true);
  });
});

/** A TCP proxy to Redis that can be taken down (listener closed, connections cut) and brought back on the same port. */
async function startRedisProxy(target: URL): Promise<{ url: string; down(): Promise<void>; up(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const up = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port || 6379), target.hostname);
        const end = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', end).on('error', end);
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as AddressInfo).port;
        resolve();
      });
    });
  await up();
  return {
    url: `redis://127.0.0.1:${port}${target.pathname}`,
    down: () =>
      new Promise<void>((resolve) => {
        server!.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
    up,
  };
}

describe('RedisCircuitBreaker while Redis is unreachable', () => {
  const keyPrefix = `${BREAKER_KEY_PREFIX}outage-${RUN}:`;
  const upstreamError = { code: 'UPSTREAM_ERROR', message: 'upstream answered 500' };

  it('answers from its own view, warns once, and uses the shared state again when Redis is back', async () => {
    const proxy = await startRedisProxy(new URL(REDIS_URL));
    const proxied = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    proxied.on('error', () => {}); // refused reconnections while the proxy is down
    const direct = new Redis(REDIS_URL);
    const logLines: Array<{ level: string; msg: string }> = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void logLines.push(JSON.parse(line)) } });
    const options = { failureThreshold: 2, cooldownMs: 60_000, keyPrefix };
    const breaker = new RedisCircuitBreaker(proxied, { ...options, logger });
    const other = new RedisCircuitBreaker(direct, options);
    try {
      await expect.poll(() => proxied.status).toBe('ready');
      await breaker.recordFailure('alpha', upstreamError);
      expect(await other.state('alpha')).toMatchObject({ state: 'closed', consecutiveFailures: 1 });

      await proxy.down();
      await expect.poll(() => proxied.status).not.toBe('ready');
      // Its own view: two failures in a row open the circuit here; generation is not held up by Redis.
      await breaker.recordFailure('alpha', upstreamError);
      await breaker.recordFailure('alpha', upstreamError);
      expect(await breaker.state('alpha')).toMatchObject({ state: 'open', consecutiveFailures: 3 });
      expect(await breaker.tryAcquire('alpha')).toBe(false);
      expect(await breaker.tryAcquire('beta')).toBe(true);
      expect(await other.state('alpha')).toMatchObject({ state: 'closed', consecutiveFailures: 1 }); // Redis never heard of them
      const warnings = logLines.filter((line) => line.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/Redis is unreachable; this instance uses its own view/);

      await proxy.up();
      await expect.poll(() => proxied.status, { timeout: 5_000 }).toBe('ready');
      expect(await breaker.state('alpha')).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
      expect(logLines.filter((line) => line.level === 'info').map((line) => line.msg)).toEqual([expect.stringMatching(/Redis answers again/)]);
      await other.recordFailure('alpha', upstreamError);
      expect(await breaker.tryAcquire('alpha')).toBe(false); // opened by the other instance, seen here again
    } finally {
      await deleteKeys(`${keyPrefix}*`);
      proxied.disconnect();
      await direct.quit();
      await proxy.down();
    }
  });
});
