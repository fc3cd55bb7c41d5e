/** GraphiQL's page renderer: GraphiQL with its assets inlined, rendered once per set of options. */
import { describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';
import { createGraphiQLRenderer, GraphiQLUnavailableError } from '../../src/web/graphiql-renderer.js';

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('createGraphiQLRenderer', () => {
  it('renders the page with its options and its assets inlined (no CDN)', async () => {
    const render = createGraphiQLRenderer();
    const html = decode(await render({ title: 'Gateway title', subscriptionsProtocol: 'WS' }));
    expect(html).toContain('<title>Gateway title</title>');
    expect(html).toContain('"subscriptionsProtocol":"WS"');
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL');
    expect(html).not.toMatch(/https?:\/\/(unpkg\.com|cdn\.jsdelivr\.net)/);
    expect(html.length).toBeGreaterThan(1_000_000);
  });

  it('renders once for equal options passed as new objects (as Yoga passes them per request)', async () => {
    const render = createGraphiQLRenderer();
    const first = await render({ title: 'A', defaultQuery: '{ models { id } }' });
    const second = await render({ title: 'A', defaultQuery: '{ models { id } }' });
    expect(second).toBe(first);
  });

  it('renders again when the options differ', async () => {
    const render = createGraphiQLRenderer();
    const first = await render({ title: 'First' });
    const second = await render({ title: 'Second' });
    expect(second).not.toBe(first);
    expect(decode(second)).toContain('<title>Second</title>');
  });

  it('answers 503 with one clear line when the module cannot be loaded, and loads again on the next request', async () => {
    let loads = 0;
    const render = createGraphiQLRenderer(async () => {
      loads += 1;
      if (loads === 1) throw new Error("Cannot find package '@graphql-yoga/render-graphiql'");
      return { renderGraphiQL: (options) => `<title>${options.title}</title>` };
    });
    // Through Yoga's own Node adapter, as the gateway serves it.
    const yoga = createYoga({ schema: createSchema({ typeDefs: 'type Query { ok: Boolean }' }), renderGraphiQL: render, graphiql: { title: 'T' }, logging: false });
    const server = createServer(yoga).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
      const failed = await fetch(url, { headers: { accept: 'text/html' } });
      expect(failed.status).toBe(503);
      expect(await failed.text()).toBe("GraphiQL is unavailable: cannot load @graphql-yoga/render-graphiql (Cannot find package '@graphql-yoga/render-graphiql')");
      const served = await fetch(url, { headers: { accept: 'text/html' } });
      expect(served.status).toBe(200);
      expect(await served.text()).toBe('<title>T</title>');
      expect(loads).toBe(2);
    } finally {
      server.close();
    }
  });

  it('keeps the load failure as the error\'s cause', async () => {
    const cause = new Error('broken install');
    const render = createGraphiQLRenderer(() => Promise.reject(cause));
    const error = await render({}).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(GraphiQLUnavailableError);
    expect((error as GraphiQLUnavailableError).cause).toBe(cause);
  });
});
