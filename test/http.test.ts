/** The HTTP surface: the liveness and readiness probes, GraphiQL, GraphQL over GET and POST. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type StartedApp } from './helpers/start-app.js';

let started: StartedApp;

beforeAll(async () => {
  started = await startApp();
});

afterAll(async () => {
  await started?.stop();
});

describe('HTTP', () => {
  it('answers GET /healthz with 200 {"status":"ok"}', async () => {
    const response = await fetch(`${started.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('answers GET /readyz with 200 {"status":"ok"} once started', async () => {
    const response = await fetch(`${started.url}/readyz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('serves GraphiQL to browsers at /graphql with its assets inlined (no CDN) and subscriptions over WebSocket', async () => {
    const response = await fetch(started.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    const html = await response.text();
    expect(html).toContain('GraphQL AI gateway');
    expect(html).not.toMatch(/https?:\/\/(unpkg\.com|cdn\.jsdelivr\.net)/);
    expect(html).toContain('subscription Story');
    expect(html).toMatch(/"subscriptionsProtocol":"WS"/);
    // Rendered once: a second request gets the same page, with its length.
    const again = await fetch(started.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(again.headers.get('content-length')).toBe(String(Buffer.byteLength(html)));
    expect(await again.text()).toBe(html);
  });

  it('runs queries over GET and POST', async () => {
    const query = encodeURIComponent('{ models { id provider } }');
    const overGet = await fetch(`${started.graphqlUrl}?query=${query}`, { headers: { accept: 'application/json' } });
    expect(overGet.status).toBe(200);
    const body = (await overGet.json()) as { data: { models: Array<{ id: string; provider: string }> } };
    expect(body.data.models).toContainEqual({ id: 'stories260K', provider: 'llama-cpp' });

    const overPost = await fetch(started.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ providers { id available unavailableReason } }' }),
    });
    expect(await overPost.json()).toEqual({ data: { providers: [{ id: 'llama-cpp', available: true, unavailableReason: null }] } });
  });

  it('refuses mutations over GET', async () => {
    const query = encodeURIComponent('mutation { cancelGeneration(id: "x") { id } }');
    const response = await fetch(`${started.graphqlUrl}?query=${query}`, { headers: { accept: 'application/json' } });
    expect(response.status).toBe(405);
  });

  it('answers 404 for unknown paths', async () => {
    expect((await fetch(`${started.url}/no-such-path`)).status).toBe(404);
  });
});
