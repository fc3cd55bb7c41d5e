/**
 * `GET /`: the page for people (one HTML file, no build step) with two tabs — chat and images, and
 * the Admin tab for virtual keys and usage — using the GraphQL API. The page loads nothing from
 * elsewhere: besides its own HTML it loads its Admin tab's script (`src/web/admin-tab.js`) and
 * two libraries' browser builds, served by this route from `node_modules`: graphql-ws
 * (`/assets/graphql-ws.min.js`) and uPlot (`/assets/uplot.iife.min.js`, `/assets/uplot.min.css`).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from '../http-route.js';

/** The page's path besides `/`. */
export const WEB_PAGE_PATH = '/index.html';

/** Where the page loads graphql-ws's browser build (UMD, global `graphqlWs`) from. */
export const GRAPHQL_WS_ASSET_PATH = '/assets/graphql-ws.min.js';

/** Where the page loads its Admin tab's script (a JavaScript module, `src/web/admin-tab.js`) from. */
export const ADMIN_TAB_ASSET_PATH = '/assets/admin-tab.js';

/** Where the page loads uPlot's browser build (IIFE, global `uPlot`; the Admin tab's chart) from. */
export const UPLOT_SCRIPT_ASSET_PATH = '/assets/uplot.iife.min.js';

/** Where the page loads uPlot's style sheet from. */
export const UPLOT_STYLE_ASSET_PATH = '/assets/uplot.min.css';

/**
 * The Content-Security-Policy sent with the page: only this origin for scripts, styles and
 * connections (plus WebSockets), images from anywhere over http(s) or inline data URLs
 * (generated images may live on a PUBLIC_BASE_URL host that is not the page's own).
 */
export const WEB_PAGE_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  'img-src \'self\' data: https: http:',
  "connect-src 'self' ws: wss:",
  "style-src 'self' 'unsafe-inline'",
  "script-src 'self' 'unsafe-inline'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** One file served from memory. */
interface StaticFile {
  body: Buffer;
  headers: Record<string, string>;
}

/** The folder of an installed package (found through its `package.json`, since a package's `exports` may not list its browser builds). */
function packageFolder(name: string): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve(`${name}/package.json`));
}

/** The request's path without query string or fragment. */
function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/**
 * A library's file, cached by browsers for an hour (it changes only when the dependency is
 * updated).
 */
function libraryFile(path: string, contentType: string): StaticFile {
  return {
    body: readFileSync(path),
    headers: { 'content-type': contentType, 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' },
  };
}

/**
 * The page route: serves `GET`/`HEAD` of `/` and `/index.html` (the page), the Admin tab's script
 * and the libraries' files (the `*_ASSET_PATH` constants), passes everything else on. Every file
 * is read once, here.
 *
 * @throws Error (from `readFileSync` or `require.resolve`) when a file is missing: `graphql-ws` or
 *   `uplot` not installed, or `admin-tab.js` not beside this module (`npm run build` copies it).
 */
export function createWebPage(): HttpRoute {
  const page: StaticFile = {
    body: readFileSync(new URL('./index.html', import.meta.url)),
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache',
      'content-security-policy': WEB_PAGE_CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
  };
  const javascript = 'application/javascript; charset=utf-8';
  // Revalidated like the page: it changes with the page, and a cached old one would not match it.
  const adminTab: StaticFile = {
    body: readFileSync(new URL('./admin-tab.js', import.meta.url)),
    headers: { 'content-type': javascript, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' },
  };
  const uplotDist = join(packageFolder('uplot'), 'dist');
  const files = new Map<string, StaticFile>([
    ['/', page],
    [WEB_PAGE_PATH, page],
    [ADMIN_TAB_ASSET_PATH, adminTab],
    [GRAPHQL_WS_ASSET_PATH, libraryFile(join(packageFolder('graphql-ws'), 'umd', 'graphql-ws.min.js'), javascript)],
    [UPLOT_SCRIPT_ASSET_PATH, libraryFile(join(uplotDist, 'uPlot.iife.min.js'), javascript)],
    [UPLOT_STYLE_ASSET_PATH, libraryFile(join(uplotDist, 'uPlot.min.css'), 'text/css; charset=utf-8')],
  ]);

  return async (request: IncomingMessage, response: ServerResponse): Promise<boolean> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const file = files.get(pathOf(request));
    if (!file) return false;
    response.writeHead(200, { ...file.headers, 'content-length': String(file.body.byteLength) });
    response.end(request.method === 'HEAD' ? undefined : file.body);
    return true;
  };
}
