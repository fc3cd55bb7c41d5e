/** GraphiQL's page renderer: GraphiQL with its assets inlined, rendered once per set of options. */
import { describe, expect, it } from 'vitest';
import { createGraphiQLRenderer } from '../../src/web/graphiql-renderer.js';

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
});
