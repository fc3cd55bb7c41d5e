/**
 * API keys end to end, with real clients: GraphQL over HTTP (fetch), REST (the official `openai`
 * client and gpt4free's `g4f-api-key` header), graphql-ws (a raw WebSocket to see the close code,
 * and the graphql-ws client), plus what stays public.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { AuthenticationError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createLogger } from '../../src/operations/logger.js';
import { hashApiKey } from '../../src/security/api-keys.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const PLAIN_KEY = 'plain-key-0123456789';
const FILE_KEY = 'file-key-9876543210';
const MODELS_QUERY = '{ models { id provider } }';
const CHAT_SUBSCRIPTION = `subscription { chatCompletion(input: { model: "fake-model", messages: [{ role: USER, content: "hi" }] }) {
  __typename ... on ChatCompletionCompleted { text } } }`;

let upstream: FakeOpenAIUpstream;
let started: StartedApp;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({ tokenCount: 3 });
  const keysFile = join(mkdtempSync(join(tmpdir(), 'gateway-auth-')), 'keys.sha256');
  writeFileSync(keysFile, `# hashed keys\n${hashApiKey(FILE_KEY)}  # a client\n`);
  started = await startApp({
    API_KEYS: PLAIN_KEY,
    API_KEYS_FILE: keysFile,
    CSRF_PREVENTION: 'true',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'] }]),
  });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

/** POSTs a GraphQL operation with the given headers; the status, headers and parsed body. */
async function postGraphQL(query: string, headers: Record<string, string> = {}) {
  const response = await fetch(started.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> } };
}

/** Opens a raw graphql-transport-ws socket, sends `connection_init` with `payload`, and resolves with the first message or the close. */
function connectionInit(payload: Record<string, unknown> | undefined): Promise<{ message?: unknown; closeCode?: number; closeReason?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(started.webSocketUrl, 'graphql-transport-ws');
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', ...(payload && { payload }) })));
    socket.on('message', (data) => {
      resolve({ message: JSON.parse(String(data)) });
      socket.close();
    });
    socket.on('close', (code, reason) => resolve({ closeCode: code, closeReason: reason.toString() }));
    socket.on('error', reject);
  });
}

/** Sends raw HTTP/1.1 bytes (so the request target reaches the server exactly as written); the status and body. */
function rawHttp(text: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(started.url).port), '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('utf8')));
    socket.on('end', () => resolve({ status: Number(received.split(' ')[1]), body: received.slice(received.indexOf('\r\n\r\n') + 4) }));
    socket.on('error', reject);
  });
}

describe('GraphQL over HTTP', () => {
  it('answers 401 UNAUTHORIZED with a GraphQL error body when no key is sent', async () => {
    const { status, headers, body } = await postGraphQL(MODELS_QUERY);
    expect(status).toBe(401);
    expect(headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(body).toEqual({ errors: [{ message: expect.stringMatching(/Authentication required.*Authorization: Bearer <key>/), extensions: { code: 'UNAUTHORIZED' } }] });
  });

  it('answers 401 for another scheme and 401 UNAUTHORIZED with invalid_token for a wrong key (RFC 6750 §3.1)', async () => {
    expect((await postGraphQL(MODELS_QUERY, { authorization: `Basic ${PLAIN_KEY}` })).status).toBe(401);
    const { status, headers, body } = await postGraphQL(MODELS_QUERY, { authorization: 'Bearer wrong-key' });
    expect(status).toBe(401);
    expect(headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(body.errors).toEqual([{ message: 'Unauthorized: the API key is not valid.', extensions: { code: 'UNAUTHORIZED' } }]);
  });

  it('serves a plain key from API_KEYS and a hashed one from API_KEYS_FILE', async () => {
    for (const key of [PLAIN_KEY, FILE_KEY]) {
      const { status, body } = await postGraphQL(MODELS_QUERY, { authorization: `Bearer ${key}` });
      expect(status).toBe(200);
      expect(body.data).toEqual({ models: expect.arrayContaining([{ id: 'fake-model', provider: 'fake' }]) });
    }
  });

  it('refuses server-sent event subscriptions without a key too', async () => {
    const response = await fetch(started.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: CHAT_SUBSCRIPTION }),
    });
    expect(response.status).toBe(401);
    expect(upstream.chatRequests()).toHaveLength(0);
  });
});

describe('REST with the official openai client', () => {
  const client = (apiKey: string, headers: Record<string, string | null> = {}) =>
    new OpenAI({ baseURL: `${started.url}/v1`, apiKey, maxRetries: 0, defaultHeaders: headers });
  const request = { model: 'fake-model', messages: [{ role: 'user' as const, content: 'hi' }] };

  it('gets AuthenticationError (401) without a key', async () => {
    const error = await client('unused', { authorization: null }).chat.completions.create(request).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ status: 401, code: 'UNAUTHORIZED', type: 'authentication_error' });
    expect((error as Error).message).toMatch(/g4f-api-key/);
  });

  it('gets AuthenticationError (401) with a wrong key, as OpenAI answers an incorrect key', async () => {
    const error = await client('wrong-key').chat.completions.create(request).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ status: 401, code: 'UNAUTHORIZED', type: 'authentication_error' });
    await expect(client('wrong-key').models.list()).rejects.toBeInstanceOf(AuthenticationError);
  });

  it('works with a configured key, as Bearer or as gpt4free\'s g4f-api-key header', async () => {
    const completion = await client(FILE_KEY).chat.completions.create(request);
    expect(completion.choices[0]!.message.content).toBe('Once upon a');
    const response = await fetch(`${started.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'g4f-api-key': PLAIN_KEY },
      body: JSON.stringify(request),
    });
    expect(response.status).toBe(200);
  });
});

describe('graphql-ws', () => {
  it('closes with 4403 when connection_init carries no key or a wrong one', async () => {
    const missing = await connectionInit(undefined);
    expect(missing).toEqual({ closeCode: 4403, closeReason: expect.stringMatching(/^Forbidden: no API key; send connectionParams\.authorization/) });
    const wrong = await connectionInit({ authorization: 'Bearer wrong-key' });
    expect(wrong).toEqual({ closeCode: 4403, closeReason: 'Unauthorized: the API key is not valid.' });
    expect(await connectionInit({ apiKey: 'wrong-key' })).toMatchObject({ closeCode: 4403 });
  });

  it('acknowledges a good key given as authorization or apiKey', async () => {
    expect(await connectionInit({ authorization: `Bearer ${PLAIN_KEY}` })).toEqual({ message: { type: 'connection_ack' } });
    expect(await connectionInit({ apiKey: FILE_KEY })).toEqual({ message: { type: 'connection_ack' } });
  });

  it('streams a subscription with a good key, and the graphql-ws client sees 4403 with a bad one', async () => {
    const good = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: `Bearer ${PLAIN_KEY}` } });
    const results = await collectWebSocket(good, CHAT_SUBSCRIPTION);
    expect(results.at(-1)).toEqual({ data: { chatCompletion: { __typename: 'ChatCompletionCompleted', text: 'Once upon a' } } });
    await good.dispose();

    const bad = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: 'Bearer wrong-key' } });
    const error = await collectWebSocket(bad, CHAT_SUBSCRIPTION).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 4403 });
    await bad.dispose();
  });
});

describe('public paths', () => {
  it('serves /healthz, /readyz, the page, its asset, GraphiQL\'s page and images without a key', async () => {
    expect((await fetch(`${started.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${started.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${started.url}/`)).status).toBe(200);
    expect((await fetch(`${started.url}/assets/graphql-ws.min.js`)).status).toBe(200);
    const graphiql = await fetch(started.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(graphiql.status).toBe(200);
    expect(await graphiql.text()).toContain('GraphQL AI gateway');
    expect((await fetch(`${started.url}/images/${'a'.repeat(64)}.png`)).status).toBe(404); // not 401: no such image
  });

  it('does not take a GraphiQL-looking GET with a query as public', async () => {
    const response = await fetch(`${started.graphqlUrl}?query=${encodeURIComponent(MODELS_QUERY)}`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(401);
  });

  it('is public only as sent: paths that Yoga or a route would normalise to /graphql need the key', async () => {
    const body = JSON.stringify({ query: MODELS_QUERY });
    for (const target of ['/graphql/', '//graphql', '/x/../graphql', '/images/../graphql', '/assets/../graphql', '/./graphql', `${started.url}/graphql`, '/graphql?x=/images/']) {
      const reply = await rawHttp(`POST ${target} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      expect({ target, status: reply.status }).toEqual({ target, status: expect.toSatisfy((status: number) => status === 401 || status === 404) });
      expect(reply.body).not.toContain('stories260K');
    }
  });

  it('does not refuse CORS preflights for want of a key (they carry no credentials and run nothing)', async () => {
    // No origin is allowed here (CORS_ORIGINS unset): no CORS headers, but no 401 either. An allowed
    // origin's keyless preflight is answered 204 (test/security/cross-origin.test.ts).
    const response = await fetch(started.graphqlUrl, {
      method: 'OPTIONS',
      headers: { origin: 'https://example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(response.status).not.toBe(401);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('the start-up log', () => {
  /** The warn lines an app logs while it starts with these settings. */
  async function startupWarnings(settings: Record<string, string>): Promise<string[]> {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    const app = await startApp(settings, { logger });
    await app.stop();
    return lines.map((line) => (JSON.parse(line) as { level: string; msg: string })).filter((line) => line.level === 'warn').map((line) => line.msg);
  }

  it('warns loudly when authentication is off, and not when keys are configured', async () => {
    expect(await startupWarnings({})).toContainEqual(expect.stringMatching(/^AUTHENTICATION IS OFF: no API_KEYS, API_KEYS_FILE or MASTER_KEY is configured and the database holds no virtual key/));
    expect(await startupWarnings({ API_KEYS: 'some-key', ALLOW_PRIVATE_NETWORK_DOWNLOADS: 'false' })).toEqual([]);
    expect(await startupWarnings({ MASTER_KEY: 'master-key-0123456789', ALLOW_PRIVATE_NETWORK_DOWNLOADS: 'false' })).toEqual([]);
  });
});
