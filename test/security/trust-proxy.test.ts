/**
 * `TRUST_PROXY`: without API keys, callers are told apart by address for the limits. Off (the
 * default), `X-Forwarded-For` is ignored and every client behind a proxy shares its address; with a
 * hop count, the address the trusted proxy saw is used (over HTTP, REST, SSE and graphql-ws — the
 * upgrade request's header); `true` takes the leftmost entry. Express' `trust proxy` hop semantics.
 */
import type { IncomingMessage } from 'node:http';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../../src/config.js';
import { clientAddressOf } from '../../src/security/authentication.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, type GraphQLResponse } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const START_CHAT = `mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }`;
const CHAT_SUBSCRIPTION = `subscription Chat($input: ChatCompletionInput!) { chatCompletion(input: $input) { __typename } }`;
const input = { model: 'fake-model', messages: [{ role: 'USER', content: 'hi' }] };

let upstream: FakeOpenAIUpstream;
const apps: Record<'off' | 'oneHop' | 'all', StartedApp> = {} as never;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({ tokenCount: 2 });
  const settings = {
    RATE_LIMIT_PER_MINUTE: '2',
    MAX_CONCURRENT_GENERATIONS_PER_KEY: '0',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'] }]),
  };
  [apps.off, apps.oneHop, apps.all] = await Promise.all([
    startApp(settings),
    startApp({ ...settings, TRUST_PROXY: '1' }),
    startApp({ ...settings, TRUST_PROXY: 'true' }),
  ]);
});

afterAll(async () => {
  await Promise.all(Object.values(apps).map((app) => app.stop()));
  await upstream?.close();
});

/** Starts a chat with a GraphQL mutation sent with `X-Forwarded-For`; the error code, if any. */
async function startVia(app: StartedApp, forwardedFor: string): Promise<string | undefined> {
  const response = await fetch(app.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', 'x-forwarded-for': forwardedFor },
    body: JSON.stringify({ query: START_CHAT, variables: { input } }),
  });
  const body = (await response.json()) as GraphQLResponse;
  return body.errors?.[0]?.extensions?.code;
}

/** A graphql-ws client whose upgrade request carries `X-Forwarded-For`. */
function webSocketClientBehindProxy(app: StartedApp, forwardedFor: string): Client {
  return createClient({
    url: app.url.replace(/^http/, 'ws') + '/graphql',
    retryAttempts: 0,
    lazy: true,
    webSocketImpl: class extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers: { 'x-forwarded-for': forwardedFor } });
      }
    },
  });
}

describe('TRUST_PROXY off (default)', () => {
  it('ignores X-Forwarded-For: every client behind the proxy shares its address and budget', async () => {
    expect(await startVia(apps.off, '203.0.113.1')).toBeUndefined();
    expect(await startVia(apps.off, '203.0.113.2')).toBeUndefined();
    expect(await startVia(apps.off, '203.0.113.3')).toBe('RATE_LIMITED');
  });
});

describe('TRUST_PROXY=1 (one proxy in front)', () => {
  it('limits each client the proxy names, not the proxy, and ignores what the client wrote before it', async () => {
    expect(await startVia(apps.oneHop, '203.0.113.1')).toBeUndefined();
    expect(await startVia(apps.oneHop, '203.0.113.1')).toBeUndefined();
    expect(await startVia(apps.oneHop, '203.0.113.1')).toBe('RATE_LIMITED');
    expect(await startVia(apps.oneHop, '203.0.113.2')).toBeUndefined();
    // The client sent "X-Forwarded-For: 198.51.100.9"; the proxy appended the address it saw.
    expect(await startVia(apps.oneHop, '198.51.100.9, 203.0.113.1')).toBe('RATE_LIMITED');
  });

  it('applies to REST', async () => {
    const complete = () =>
      fetch(`${apps.oneHop.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.3' },
        body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
      });
    expect((await complete()).status).toBe(200);
    expect((await complete()).status).toBe(200);
    const refused = await complete();
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect(await startVia(apps.oneHop, '203.0.113.4')).toBeUndefined(); // another client
  });

  it('applies to SSE and graphql-ws (the upgrade request), one budget with HTTP', async () => {
    const overSse = await fetch(apps.oneHop.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-forwarded-for': '203.0.113.5' },
      body: JSON.stringify({ query: CHAT_SUBSCRIPTION, variables: { input } }),
    });
    expect(await overSse.text()).toContain('ChatCompletionCompleted');

    const client = webSocketClientBehindProxy(apps.oneHop, '203.0.113.5');
    try {
      const results = await collectWebSocket(client, CHAT_SUBSCRIPTION, { input });
      expect(results.at(-1)).toEqual({ data: { chatCompletion: { __typename: 'ChatCompletionCompleted' } } });
      // SSE and graphql-ws counted against 203.0.113.5: its budget of 2 is spent, on every transport.
      expect(await startVia(apps.oneHop, '203.0.113.5')).toBe('RATE_LIMITED');
      const refused = await collectWebSocket(client, CHAT_SUBSCRIPTION, { input });
      expect(refused[0]!.errors![0]!.extensions!.code).toBe('RATE_LIMITED');
    } finally {
      await client.dispose();
    }
    const otherClient = webSocketClientBehindProxy(apps.oneHop, '203.0.113.6');
    try {
      expect((await collectWebSocket(otherClient, CHAT_SUBSCRIPTION, { input })).at(-1)!.errors).toBeUndefined();
    } finally {
      await otherClient.dispose();
    }
  });
});

describe('TRUST_PROXY=true', () => {
  it('takes the leftmost X-Forwarded-For entry', async () => {
    expect(await startVia(apps.all, '198.51.100.7, 203.0.113.1')).toBeUndefined();
    expect(await startVia(apps.all, '198.51.100.7, 203.0.113.2')).toBeUndefined();
    expect(await startVia(apps.all, '198.51.100.7')).toBe('RATE_LIMITED');
    expect(await startVia(apps.all, '203.0.113.1')).toBeUndefined();
  });
});

describe('clientAddressOf', () => {
  const request = (forwardedFor?: string) =>
    ({ socket: { remoteAddress: '::ffff:10.0.0.2' }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } }) as IncomingMessage;

  it('counts hops from the connection leftwards through X-Forwarded-For, like Express', () => {
    const chain = '198.51.100.1, 203.0.113.9 ,192.0.2.4';
    expect(clientAddressOf(request(chain), 0)).toBe('10.0.0.2');
    expect(clientAddressOf(request(chain), 1)).toBe('192.0.2.4');
    expect(clientAddressOf(request(chain), 2)).toBe('203.0.113.9');
    expect(clientAddressOf(request(chain), 3)).toBe('198.51.100.1');
    expect(clientAddressOf(request(chain), 9)).toBe('198.51.100.1');
    expect(clientAddressOf(request(chain), Number.POSITIVE_INFINITY)).toBe('198.51.100.1');
    expect(clientAddressOf(request(), 1)).toBe('10.0.0.2');
    expect(clientAddressOf(request('::ffff:192.0.2.7'), 1)).toBe('192.0.2.7');
    expect(clientAddressOf(undefined, 1)).toBe('unknown');
  });

  it('is configured by TRUST_PROXY: true, false or a hop count; anything else is one clear line', () => {
    expect(loadConfig({}).security.trustedProxyHops).toBe(0);
    expect(loadConfig({ TRUST_PROXY: 'true' }).security.trustedProxyHops).toBe(Number.POSITIVE_INFINITY);
    expect(loadConfig({ TRUST_PROXY: 'false' }).security.trustedProxyHops).toBe(0);
    expect(loadConfig({ TRUST_PROXY: '2' }).security.trustedProxyHops).toBe(2);
    expect(() => loadConfig({ TRUST_PROXY: 'loopback' })).toThrow(ConfigError);
    expect(() => loadConfig({ TRUST_PROXY: '-1' })).toThrow(
      'Invalid configuration: TRUST_PROXY: TRUST_PROXY must be true, false or a number of trusted proxy hops (0 or more) (got "-1")',
    );
  });
});
