/**
 * `GET /`: the chat-and-image page for people (one HTML file, no build step), using the GraphQL API.
 * The page loads nothing from elsewhere: its only script besides its own is graphql-ws's browser
 * build, served by this route from `node_modules` at `/assets/graphql-ws.min.js`.
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

/** The absolute path of graphql-ws's minified UMD build (the `umd/` folder is not in its `exports`, so via `package.json`). */
function graphqlWsBrowserBuildPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('graphql-ws/package.json')), 'umd', 'graphql-ws.min.js');
}

/** The request's path without query string or fragment. */
function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/**
 * The page route: serves `GET`/`HEAD` of `/` and `/index.html` (the page) and
 * `/assets/graphql-ws.min.js`, passes everything else on. Both files are read once, here.
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
  const graphqlWs: StaticFile = {
    body: readFileSync(graphqlWsBrowserBuildPath()),
    headers: {
      'content-type': 'application/javascript; charset=utf-8',
      'cache-control': 'public, max-age=3600',
      'x-content-type-options': 'nosniff',
    },
  };
  const files = new Map<string, StaticFile>([
    ['/', page],
    [WEB_PAGE_PATH, page],
    [GRAPHQL_WS_ASSET_PATH, graphqlWs],
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
