/**
 * The one `node:http` server: every request is tracked (request id, log line, metrics), answered
 * by the first handler that takes it — a CORS preflight, `/healthz`, `/readyz` and `/metrics`, a refusal of
 * the security layer, the plain routes (images, REST, the page) — or else by GraphQL (which
 * answers 404 for anything it does not know). What a connection writes in one event-loop turn
 * leaves in one write (batched-writes.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpRoute } from '../http-route.js';
import type { Operations } from '../operations/operations.js';
import type { Tracing } from '../operations/tracing/start-tracing.js';
import type { Security } from '../security/security.js';
import { batchWrites } from '../batched-writes.js';
import type { CrossOriginHandler } from './cross-origin.js';
import type { GraphQLServer } from './graphql-server.js';
import { sendHttpRefusal } from './http-refusal.js';

/** The handlers of the HTTP server, in the order they are tried. */
export interface HttpServerOptions {
  crossOrigin: CrossOriginHandler;
  operations: Pick<Operations, 'route' | 'track' | 'logger'>;
  /** With tracing on: each request is handled inside its server span. */
  tracing?: Pick<Tracing, 'traceRequest'>;
  security: Pick<Security, 'admitHttp'>;
  /** Plain HTTP routes, tried in order before GraphQL. */
  routes: HttpRoute[];
  yoga: GraphQLServer;
}

/** Creates the server (not listening). A handler that throws is logged and answered 500 (or the connection is cut once the answer began). */
export function createHttpServer({ crossOrigin, operations, tracing, security, routes, yoga }: HttpServerOptions): Server {
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (await crossOrigin(request, response)) return; // a CORS preflight from an allowed origin (CORS_ORIGINS)
    if (await operations.route(request, response)) return; // /healthz, /readyz, /metrics
    const refusal = await security.admitHttp(request); // no or wrong API key, a GraphQL body too large
    if (refusal) return sendHttpRefusal(request, response, refusal);
    for (const route of routes) {
      if (await route(request, response)) return;
    }
    await yoga(request, response);
  };
  const server = createServer((request, response) => {
    const tracked = () => operations.track(request, response, () => handle(request, response));
    (tracing ? tracing.traceRequest(request, response, tracked) : tracked()).catch((error: unknown) => {
      operations.logger.error({ err: error, requestId: response.getHeader('x-request-id'), method: request.method }, 'request failed');
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"internal error"}}');
      else response.destroy();
    });
  });
  server.on('connection', batchWrites);
  return server;
}

/**
 * Listens on `host:port` (port 0 = any free port).
 * @returns the bound port.
 * @throws the listen error (EADDRINUSE, EACCES) alone: `ws` relays the HTTP server's 'error' events
 *   to its WebSocket server, where graphql-ws would print them with their stack, so they are held
 *   back while listening.
 */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const relays = server.rawListeners('error') as Array<(error: Error) => void>;
    server.removeAllListeners('error');
    const restoreRelays = (): void => {
      for (const relay of relays) server.on('error', relay);
    };
    const failed = (error: Error): void => {
      restoreRelays();
      reject(error);
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      restoreRelays();
      resolve((server.address() as AddressInfo).port);
    });
  });
}
