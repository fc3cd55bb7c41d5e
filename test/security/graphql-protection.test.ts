/**
 * What bounds one GraphQL operation, end to end: each graphql-armor limit (over HTTP, and over
 * graphql-ws without closing the socket), CSRF prevention, introspection and GraphiQL switched
 * off, and the GraphQL-over-HTTP conformance audits of `graphql-http` against a production-like
 * configuration (keys on, CSRF prevention on).
 */
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectWebSocket, createWebSocketClient, type GraphQLResponse } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

/** POSTs a query as JSON with extra headers; the status and the parsed body. */
async function post(url: string, query: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse };
}

describe('graphql-armor limits', () => {
  let started: StartedApp;

  beforeAll(async () => {
    started = await startApp({
      GRAPHQL_MAX_DEPTH: '2',
      GRAPHQL_MAX_ALIASES: '3',
      GRAPHQL_MAX_COST: '12',
      GRAPHQL_MAX_TOKENS: '60',
      GRAPHQL_MAX_DIRECTIVES: '2',
    });
  });

  afterAll(async () => {
    await started?.stop();
  });

  it.each([
    ['depth', '{ providers { models { id } } }', 'Query depth limit of 2 exceeded, found 3.'],
    ['aliases', '{ models { a: id b: id c: id d: id } }', 'Aliases limit of 3 exceeded, found 4.'],
    ['cost', '{ models { id provider capabilities } providers { id label available } }', 'Query Cost limit of 12 exceeded, found 13.'],
    ['directives', '{ models @include(if: true) { id @include(if: true) provider @skip(if: false) } }', 'Directives limit of 2 exceeded, found 3.'],
  ])('refuses an operation over the %s limit with a validation error (400)', async (_limit, query, message) => {
    const { status, body } = await post(started.graphqlUrl, query);
    expect(status).toBe(400);
    expect(body).toEqual({ errors: [{ message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }] });
  });

  it('refuses a document over the token limit while parsing', async () => {
    const { status, body } = await post(started.graphqlUrl, `{ models { ${'id '.repeat(70)}} }`);
    expect(status).toBe(400);
    expect(body.errors).toEqual([expect.objectContaining({ message: 'Syntax Error: Token limit of 60 exceeded.' })]);
  });

  it('lets operations within every limit through', async () => {
    const { status, body } = await post(started.graphqlUrl, '{ models { id provider } providers { id } }');
    expect(status).toBe(200);
    expect(body.data?.models).toContainEqual({ id: 'stories260K', provider: 'llama-cpp' });
  });

  it('applies the same limits over graphql-ws, answering with errors and keeping the socket open', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    const tooDeep = await collectWebSocket(client, '{ providers { models { id } } }').catch((caught: unknown) => caught);
    expect(tooDeep).toEqual([expect.objectContaining({ message: 'Query depth limit of 2 exceeded, found 3.' })]);
    const tooLong = await collectWebSocket(client, `{ models { ${'id '.repeat(70)}} }`).catch((caught: unknown) => caught);
    expect(tooLong).toEqual([expect.objectContaining({ message: 'Syntax Error: Token limit of 60 exceeded.' })]);
    expect(await collectWebSocket(client, '{ models { id } }')).toEqual([{ data: { models: expect.arrayContaining([{ id: 'stories260K' }]) } }]);
    await client.dispose();
  });
});

describe('CSRF prevention', () => {
  let started: StartedApp;
  const query = '{ models { id } }';

  beforeAll(async () => {
    started = await startApp({ CSRF_PREVENTION: 'true' });
  });

  afterAll(async () => {
    await started?.stop();
  });

  it.each([
    ['text/plain', JSON.stringify({ query })],
    ['application/x-www-form-urlencoded', `query=${encodeURIComponent(query)}`],
    ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query })}\r\n--x--\r\n`],
  ])('refuses a POST with content type %s and no x-graphql-yoga-csrf header (403)', async (contentType, body) => {
    const response = await fetch(started.graphqlUrl, { method: 'POST', headers: { 'content-type': contentType }, body });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ errors: [expect.objectContaining({ message: 'Required CSRF header(s) not present' })] });
  });

  it('refuses a GET without the header and serves it with the header', async () => {
    const url = `${started.graphqlUrl}?query=${encodeURIComponent(query)}`;
    expect((await fetch(url, { headers: { accept: 'application/json' } })).status).toBe(403);
    const allowed = await fetch(url, { headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' } });
    expect(allowed.status).toBe(200);
    expect(((await allowed.json()) as GraphQLResponse).data?.models).toContainEqual({ id: 'stories260K' });
  });

  it('serves JSON POSTs (what GraphiQL, the page and GraphQL clients send) without the header, and GraphiQL\'s page', async () => {
    expect((await post(started.graphqlUrl, query)).status).toBe(200);
    const graphiql = await fetch(started.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(graphiql.status).toBe(200);
    expect(graphiql.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('keeps the page working: its own fetches send the header', async () => {
    const page = await (await fetch(`${started.url}/`)).text();
    expect(page).toContain("'x-graphql-yoga-csrf': '1'");
  });
});

describe('production switches: INTROSPECTION=false, GRAPHIQL=false', () => {
  let started: StartedApp;

  beforeAll(async () => {
    started = await startApp({ API_KEYS: 'key', INTROSPECTION: 'false', GRAPHIQL: 'false' });
  });

  afterAll(async () => {
    await started?.stop();
  });

  const authorized = { authorization: 'Bearer key' };

  it('refuses introspection and hides field suggestions', async () => {
    const { status, body } = await post(started.graphqlUrl, '{ __schema { queryType { name } } }', authorized);
    expect(status).toBe(400);
    expect(body.errors?.[0]?.message).toMatch(/introspection has been disabled/);
    const typo = await post(started.graphqlUrl, '{ modelz { id } }', authorized);
    expect(typo.body.errors?.[0]?.message).toMatch(/Cannot query field "modelz"/);
    expect(typo.body.errors?.[0]?.message).not.toMatch(/Did you mean/);
    expect((await post(started.graphqlUrl, '{ models { id } }', authorized)).body.data?.models).toContainEqual({ id: 'stories260K' });
  });

  it('serves no GraphiQL page, and the GET is no longer public', async () => {
    const anonymous = await fetch(started.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(anonymous.status).toBe(401);
    const response = await fetch(started.graphqlUrl, { headers: { accept: 'text/html', ...authorized } });
    expect(response.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(await response.text()).not.toMatch(/<html/i);
  });

  it('answers introspection when INTROSPECTION is on (the default)', async () => {
    const open = await startApp();
    try {
      expect((await post(open.graphqlUrl, '{ __schema { queryType { name } } }')).body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
      const typo = await post(open.graphqlUrl, '{ modelz { id } }');
      expect(typo.body.errors?.[0]?.message).toMatch(/Did you mean "models"/);
    } finally {
      await open.stop();
    }
  });
});

describe('graphql-http server audits (keys and CSRF prevention on)', () => {
  let started: StartedApp | undefined;

  beforeAll(async () => {
    started = await startApp({ API_KEYS: 'audit-key', CSRF_PREVENTION: 'true' });
  });

  afterAll(async () => {
    await started?.stop();
  });

  /** The audits' fetch with the API key and the CSRF header (the audits send GET and form-less requests a browser could forge). */
  const fetchFn = (input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', 'Bearer audit-key');
    headers.set('x-graphql-yoga-csrf', '1');
    return fetch(input, { ...init, headers });
  };

  for (const audit of serverAudits({ url: () => started!.graphqlUrl, fetchFn })) {
    it(audit.name, async () => {
      const result = await audit.fn();
      // graphql-http: `ok` passes; `notice` is informational; `warn` (a SHOULD) and `error` (a MUST) fail here.
      const detail = result.status === 'ok' ? '' : `${result.reason} (HTTP ${result.response.status})`;
      expect({ status: result.status, detail }).toEqual({ status: expect.stringMatching(/^(ok|notice)$/), detail: result.status === 'notice' ? detail : '' });
    });
  }
});
