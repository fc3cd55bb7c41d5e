/**
 * Persisted operations (`PERSISTED_OPERATIONS_FILE`): only listed operations run, over HTTP, SSE and
 * graphql-ws alike. The list is the one GraphQL Code Generator writes for the TypeScript example
 * (`examples/typescript-client/src/gql/persisted-documents.json`): the example, sending ids only,
 * streams a chat from the real model and an image from a fake Gradio Space, while the same example
 * sending operation texts, and any ad-hoc operation, is refused. A second list adds a query, for
 * plain HTTP (POST and GET, `documentId` and Automatic Persisted Queries' `sha256Hash`). The file is
 * checked when the configuration loads.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/operations/logger.js';
import { runTypeScriptClient, TYPESCRIPT_CLIENT_EXAMPLE } from '../helpers/examples.js';
import { startFakeGradioSpace, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { collectServerSentEvents, collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { startApp, testAppDefaults, type StartedApp } from '../helpers/start-app.js';

const EXAMPLE_LIST = join(TYPESCRIPT_CLIENT_EXAMPLE, 'src', 'gql', 'persisted-documents.json');
const CHAT_MODEL = 'llama-cpp:stories260K';
const STORY_INPUT = { input: { messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 8, model: CHAT_MODEL } };

/** The example's operations by id, as codegen wrote them. */
const exampleOperations = JSON.parse(readFileSync(EXAMPLE_LIST, 'utf8')) as Record<string, string>;
/** The id of the example's `StreamChat` subscription (`sha256:<hex>`). */
const streamChatId = Object.keys(exampleOperations).find((id) => exampleOperations[id]!.startsWith('subscription StreamChat'))!;

/** `sha256:` and the hex SHA-256 of `text`, the id codegen gives an operation. */
function sha256Id(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** A GraphQL request over plain HTTP: its status and body. */
async function request(url: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method: init.json === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    ...(init.json !== undefined && { body: JSON.stringify(init.json) }),
  });
  return { status: response.status, body: await response.json() };
}

/** The codes of the errors a graphql-ws subscription was refused with (graphql-ws rejects with the `error` message's errors). */
async function webSocketRefusal(url: string, query: string, parameters?: Record<string, unknown>): Promise<unknown[]> {
  const client = createWebSocketClient(url);
  try {
    await collectWebSocket(client, query, STORY_INPUT, parameters);
  } catch (errors) {
    return (errors as Array<{ extensions?: { code?: string } }>).map((error) => error.extensions?.code);
  } finally {
    await client.dispose();
  }
  throw new Error('the subscription was not refused');
}

describe('with the TypeScript example’s generated list', () => {
  let space: FakeGradioSpace;
  let started: StartedApp;
  const warnings: string[] = [];

  beforeAll(async () => {
    space = await startFakeGradioSpace();
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) } });
    started = await startApp({ PERSISTED_OPERATIONS_FILE: EXAMPLE_LIST, HF_SPACES_ENABLED: 'true', HF_FLUX_SCHNELL_URL: space.baseURL }, { logger });
  });

  afterAll(async () => {
    await started?.stop();
    await space?.close();
  });

  it('runs the example sending document ids: a chat and an image stream over graphql-ws', async () => {
    const output = await runTypeScriptClient({
      GATEWAY_URL: started.webSocketUrl,
      SEND_DOCUMENT_IDS: 'true',
      CHAT_MODEL,
      IMAGE_MODEL: 'hf-space:flux-1-schnell',
      MAX_TOKENS: '16',
    });
    expect(output.chatText.length).toBeGreaterThan(0);
    expect(output.completed.completionTokens).toBeGreaterThan(0);
    expect(output.images).toEqual([expect.objectContaining({ width: 256, height: 256, mimeType: 'image/png' })]);
  });

  it('refuses the same example sending operation texts, with PERSISTED_QUERY_ONLY', async () => {
    const failure = await runTypeScriptClient({ GATEWAY_URL: started.webSocketUrl, CHAT_MODEL }).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('PERSISTED_QUERY_ONLY: This server runs only persisted operations');
    expect(space.requests).toHaveLength(1); // only the first test's image
  });

  it('graphql-ws: an id runs as documentId and as an Automatic Persisted Queries hash; a text or an unknown id is refused', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    const byDocumentId = await collectWebSocket(client, '', STORY_INPUT, { documentId: streamChatId });
    const byHash = await collectWebSocket(client, '', STORY_INPUT, { extensions: { persistedQuery: { version: 1, sha256Hash: streamChatId.slice('sha256:'.length) } } });
    await client.dispose();
    for (const results of [byDocumentId, byHash]) {
      expect(results.every((result) => result.errors === undefined)).toBe(true);
      expect(results.at(-1)!.data!.chatCompletion.__typename).toBe('ChatCompletionCompleted');
    }
    // The listed text itself, sent as a text, is refused too: only ids run.
    expect(await webSocketRefusal(started.webSocketUrl, exampleOperations[streamChatId]!)).toEqual(['PERSISTED_QUERY_ONLY']);
    expect(await webSocketRefusal(started.webSocketUrl, '')).toEqual(['PERSISTED_QUERY_ONLY']);
    expect(await webSocketRefusal(started.webSocketUrl, '', { documentId: sha256Id('subscription Other { __typename }') })).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
  });

  it('SSE: a listed subscription streams by documentId; an ad-hoc one is refused', async () => {
    const results = await collectServerSentEvents(started.graphqlUrl, undefined, STORY_INPUT, { parameters: { documentId: streamChatId } });
    expect(results.every((result) => result.errors === undefined)).toBe(true);
    expect(results.at(-1)!.data!.chatCompletion.__typename).toBe('ChatCompletionCompleted');

    const response = await fetch(started.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription ($input: ChatCompletionInput!) { chatCompletion(input: $input) { __typename } }', variables: STORY_INPUT }),
    });
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).toContain('"code":"PERSISTED_QUERY_ONLY"');
    expect(text).not.toContain('ChatCompletionStarted');
  });

  it('HTTP: an ad-hoc query, introspection and an unknown id are refused with 400 and a code', async () => {
    const adHoc = await request(started.graphqlUrl, { json: { query: '{ models { id } }' } });
    expect(adHoc).toEqual({ status: 400, body: { errors: [expect.objectContaining({ message: expect.stringMatching(/^This server runs only persisted operations/), extensions: { code: 'PERSISTED_QUERY_ONLY' } })] } });
    const introspection = await request(started.graphqlUrl, { json: { query: '{ __schema { queryType { name } } }' } });
    expect(introspection.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_ONLY');
    const nothing = await request(started.graphqlUrl, { json: {} });
    expect(nothing.status).toBe(400);
    expect(nothing.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_ONLY');
    const unknownId = sha256Id('{ models { id } }');
    const unknown = await request(started.graphqlUrl, { json: { documentId: unknownId } });
    expect(unknown).toEqual({ status: 400, body: { errors: [expect.objectContaining({ message: `No persisted operation has the id "${unknownId}".`, extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } })] } });
  });

  it('warns at start that GraphiQL can run nothing of its own', () => {
    expect(warnings).toContainEqual(expect.stringMatching(/^PERSISTED_OPERATIONS_FILE: only its 2 operations run, so GraphiQL \(and the page at \/\) can run nothing of their own; set GRAPHIQL=false\.$/));
  });
});

describe('with a list holding a query', () => {
  const modelsQuery = 'query Models { models { id } }';
  let started: StartedApp;
  const warnings: string[] = [];

  beforeAll(async () => {
    const folder = mkdtempSync(join(tmpdir(), 'persisted-operations-'));
    const file = join(folder, 'persisted-documents.json');
    writeFileSync(file, JSON.stringify({ ...exampleOperations, [sha256Id(modelsQuery)]: modelsQuery }));
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) } });
    started = await startApp({ PERSISTED_OPERATIONS_FILE: file, GRAPHIQL: 'false' }, { logger });
  });

  afterAll(async () => {
    await started?.stop();
  });

  it('runs it over POST and GET, by documentId and by sha256Hash', async () => {
    const hash = sha256Id(modelsQuery).slice('sha256:'.length);
    const extensions = JSON.stringify({ persistedQuery: { version: 1, sha256Hash: hash } });
    const answers = [
      await request(started.graphqlUrl, { json: { documentId: sha256Id(modelsQuery) } }),
      await request(started.graphqlUrl, { json: { extensions: { persistedQuery: { version: 1, sha256Hash: hash.toUpperCase() } } } }),
      await request(`${started.graphqlUrl}?documentId=${encodeURIComponent(sha256Id(modelsQuery))}`),
      await request(`${started.graphqlUrl}?extensions=${encodeURIComponent(extensions)}`),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body.errors).toBeUndefined();
      expect(answer.body.data.models).toContainEqual(expect.objectContaining({ id: 'stories260K' }));
    }
    // The same text sent with its id is still a text: refused.
    const both = await request(started.graphqlUrl, { json: { query: modelsQuery, documentId: sha256Id(modelsQuery) } });
    expect(both.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_ONLY');
  });

  it('logs no GraphiQL warning with GRAPHIQL=false', () => {
    expect(warnings.filter((line) => line.startsWith('PERSISTED_OPERATIONS_FILE'))).toEqual([]);
  });
});

describe('PERSISTED_OPERATIONS_FILE when the configuration loads', () => {
  const folder = mkdtempSync(join(tmpdir(), 'persisted-operations-file-'));

  /** The one-line error loadConfig gives for a file with `contents`. */
  function refusal(contents: string | Buffer): string {
    const file = join(folder, `list-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, contents);
    try {
      loadConfig({ ...testAppDefaults(), PERSISTED_OPERATIONS_FILE: file });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).not.toContain('\n');
      return (error as Error).message.replaceAll(file, '<file>');
    }
    throw new Error('the configuration loaded');
  }

  it('reads codegen’s list, plain hex ids as sha256: ids, and other ids as they are', () => {
    const config = loadConfig({ ...testAppDefaults(), PERSISTED_OPERATIONS_FILE: EXAMPLE_LIST });
    expect([...config.security.persistedOperations!.keys()].sort()).toEqual(Object.keys(exampleOperations).sort());
    const file = join(folder, 'other-ids.json');
    const hex = sha256Id('{ __typename }').slice('sha256:'.length);
    writeFileSync(file, JSON.stringify({ [hex.toUpperCase()]: '{ __typename }', 'relay:42': 'query Q { models { id } }' }));
    const other = loadConfig({ ...testAppDefaults(), PERSISTED_OPERATIONS_FILE: file });
    expect([...other.security.persistedOperations!.entries()]).toEqual([
      [`sha256:${hex}`, '{ __typename }'],
      ['relay:42', 'query Q { models { id } }'],
    ]);
    expect(loadConfig(testAppDefaults()).security.persistedOperations).toBeUndefined();
  });

  it('refuses a bad file in one line naming the problem', () => {
    const valid = '{ __typename }';
    expect(() => loadConfig({ ...testAppDefaults(), PERSISTED_OPERATIONS_FILE: join(folder, 'missing.json') })).toThrow(
      /^Invalid configuration: PERSISTED_OPERATIONS_FILE: cannot read .*missing\.json: ENOENT/,
    );
    expect(refusal('{ not json')).toMatch(/^Invalid configuration: PERSISTED_OPERATIONS_FILE: <file>: not JSON \(/);
    expect(refusal('["{ __typename }"]')).toMatch(/<file>: not a JSON object of operation ids to operation texts/);
    expect(refusal('{}')).toMatch(/<file>: lists no operation, so every GraphQL request would be refused/);
    expect(refusal(JSON.stringify({ [sha256Id(valid)]: 42 }))).toMatch(/the operation sha256:[0-9a-f]{64} is not a GraphQL document text/);
    expect(refusal(JSON.stringify({ 'an id with spaces': valid }))).toMatch(/the id "an id with spaces" is neither sha256:<64 hex digits> nor up to 200 letters/);
    expect(refusal(JSON.stringify({ 'relay:1': '{ models { id }' }))).toMatch(/the operation relay:1 is not valid GraphQL: Syntax Error/);
    expect(refusal(JSON.stringify({ [sha256Id(valid)]: '{ models { id } }' }))).toMatch(/the id sha256:[0-9a-f]{64} is not the SHA-256 of its operation's text \(generate the list again\)/);
    expect(refusal(Buffer.alloc(8 * 1024 * 1024 + 1, ' '))).toMatch(/cannot read <file>: 8388609 bytes, more than the 8388608 accepted/);
  });
});
