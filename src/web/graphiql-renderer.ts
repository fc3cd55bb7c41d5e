/**
 * GraphiQL's page for Yoga's `renderGraphiQL` option, from `@graphql-yoga/render-graphiql`, which
 * inlines GraphiQL's assets so that the page works with no network (Yoga's default loads them from
 * a CDN, which leaves the page blank offline or behind a firewall). That module is one JavaScript
 * file of several megabytes holding the assets as strings: loading it is a large share of the
 * gateway's start and heap, and rendering the page a long stretch of the event loop (figures in
 * `docs/performance.md`). So it is loaded on the first GraphiQL request, not at start, and each
 * page is rendered and encoded once.
 */
import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * Renders GraphiQL's HTML page for `options` (what Yoga passes: our `graphiql` options as a new
 * object per request), as UTF-8 bytes (several megabytes).
 * @throws {@link GraphiQLUnavailableError} (the returned promise rejects) when
 *   `@graphql-yoga/render-graphiql` cannot be loaded; the next call tries again.
 */
export type GraphiQLRenderer = (options: GraphiQLOptions) => Promise<Uint8Array<ArrayBuffer>>;

/** The part of `@graphql-yoga/render-graphiql` used here. */
export interface GraphiQLModule {
  renderGraphiQL(options: GraphiQLOptions): string;
}

/**
 * GraphiQL's module could not be loaded. Yoga's server adapter answers an error thrown while
 * rendering with its `status` and, as the body, its `stack` (or message): so `status` is 503 and
 * the stack is the one-line message, e.g. `GraphiQL is unavailable: cannot load
 * @graphql-yoga/render-graphiql (Cannot find package …)`, with no file paths.
 */
export class GraphiQLUnavailableError extends Error {
  /** The HTTP status Yoga's server adapter answers with. */
  readonly status = 503;

  constructor(cause: unknown) {
    super(`GraphiQL is unavailable: cannot load @graphql-yoga/render-graphiql (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.name = 'GraphiQLUnavailableError';
    this.stack = this.message;
  }
}

/**
 * Returns a {@link GraphiQLRenderer} that loads GraphiQL's module on its first call and keeps the
 * last page it rendered, keyed by the options' JSON (one page per gateway: its options do not
 * change per request).
 * @param load loads the module; `import('@graphql-yoga/render-graphiql')` unless given.
 */
export function createGraphiQLRenderer(load: () => Promise<GraphiQLModule> = () => import('@graphql-yoga/render-graphiql')): GraphiQLRenderer {
  let last: { key: string; page: Promise<Uint8Array<ArrayBuffer>> } | undefined;
  return (options) => {
    const key = JSON.stringify(options);
    if (last?.key === key) return last.page;
    const page = load().then(
      (module) => Buffer.from(module.renderGraphiQL(options)),
      (error: unknown) => {
        throw new GraphiQLUnavailableError(error);
      },
    );
    const entry = { key, page };
    last = entry;
    // A failed load is not kept: the next request tries again.
    page.catch(() => {
      if (last === entry) last = undefined;
    });
    return page;
  };
}
