/** The shape of the plain HTTP routes served beside GraphQL (REST API, images, the page). */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Handles a request it recognises and resolves `true`; resolves `false` (having written
 * nothing) for requests that are not its own, so the next route can take them.
 */
export type HttpRoute = (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;
