/**
 * One stream of any {@link UpstreamPath}, all asking the fake upstream for the same stream (its
 * shape is named by the model, e.g. `bench?gapMs=20`, see `bench/fake-upstream.ts`).
 */
import type { Client } from 'graphql-ws';
import { portkeyHeaders } from './portkey-process.js';
import type { UpstreamPath } from './report.js';
import {
  followWebSocket,
  startChatCompletion,
  streamChatCompletions,
  streamServerSentEvents,
  streamWebSocket,
  type ChatCompletionInput,
  type StreamOptions,
  type StreamResult,
} from './stream-clients.js';

/** Where the processes under test listen, and their process ids (for `/proc` CPU and memory readings). */
export interface PathTargets {
  /** The fake upstream, `http://127.0.0.1:<port>/v1`. */
  upstreamBaseURL: string;
  /** This gateway, `http://127.0.0.1:<port>`. */
  gatewayURL: string;
  /** The byte relay in front of the fake upstream (`bench/tcp-relay-process.ts`), `http://127.0.0.1:<port>/v1`, when it runs. */
  relayBaseURL?: string;
  /** Portkey, `http://127.0.0.1:<port>/v1`, when it takes part. */
  portkeyBaseURL?: string;
  gatewayProcessId: number | undefined;
  upstreamProcessId: number | undefined;
  portkeyProcessId?: number | undefined;
}

/** The provider id of the fake upstream in the gateway's `OPENAI_COMPATIBLE_UPSTREAMS`. */
export const BENCH_PROVIDER = 'bench';
const PROMPT = 'Tell me a story.';

/** The gateway's `/graphql` URL. */
export const graphqlURL = (targets: PathTargets) => `${targets.gatewayURL}/graphql`;
/** The gateway's graphql-ws URL. */
export const webSocketURL = (targets: PathTargets) => `${targets.gatewayURL.replace(/^http/, 'ws')}/graphql`;

/** The process between client and upstream on `path` (this gateway or Portkey); undefined for direct. */
export function middleProcessId(path: UpstreamPath, targets: PathTargets): number | undefined {
  if (path === 'direct') return undefined;
  if (path === 'portkey') return targets.portkeyProcessId;
  return targets.gatewayProcessId;
}

/**
 * Runs one stream of `model` on `path`. `webSocketClient` is used (and needed) by graphql-ws, and by
 * `start-and-follow`, which starts the generation on `targets.gatewayURL` and follows it on the
 * instance `webSocketClient` is connected to. Resolves with the {@link StreamResult}, never rejects.
 */
export function runPath(
  path: UpstreamPath,
  targets: PathTargets,
  webSocketClient: Client | undefined,
  model: string,
  options: StreamOptions,
): Promise<StreamResult> {
  switch (path) {
    case 'direct':
      return streamChatCompletions(targets.upstreamBaseURL, { model, messages: [{ role: 'user', content: PROMPT }] }, {}, options);
    case 'portkey':
      if (!targets.portkeyBaseURL) return Promise.resolve(failed('Portkey is not running'));
      return streamChatCompletions(targets.portkeyBaseURL, { model, messages: [{ role: 'user', content: PROMPT }] }, portkeyHeaders(targets.upstreamBaseURL), options);
    case 'rest':
      return streamChatCompletions(`${targets.gatewayURL}/v1`, { model, provider: BENCH_PROVIDER, messages: [{ role: 'user', content: PROMPT }] }, {}, options);
    case 'graphql-ws':
      if (!webSocketClient) return Promise.resolve(failed('no graphql-ws client'));
      return streamWebSocket(webSocketClient, { provider: BENCH_PROVIDER, model, messages: [{ role: 'USER', content: PROMPT }] }, options);
    case 'sse':
      return streamServerSentEvents(graphqlURL(targets), { provider: BENCH_PROVIDER, model, messages: [{ role: 'USER', content: PROMPT }] }, options);
    case 'start-and-follow':
      if (!webSocketClient) return Promise.resolve(failed('no graphql-ws client'));
      return startAndFollow(targets, webSocketClient, { provider: BENCH_PROVIDER, model, messages: [{ role: 'USER', content: PROMPT }] }, options);
  }
}

/** `start-and-follow`: times count from the mutation's start, so the first token's includes both hops. */
async function startAndFollow(targets: PathTargets, follower: Client, input: ChatCompletionInput, options: StreamOptions): Promise<StreamResult> {
  const startedAt = performance.now();
  let generationId: string;
  try {
    generationId = await startChatCompletion(graphqlURL(targets), input, options.timeoutMs);
  } catch (error) {
    return failed((error as Error).message);
  }
  const startMs = performance.now() - startedAt;
  const result = await followWebSocket(follower, generationId, options);
  return {
    ...result,
    firstTokenMs: result.firstTokenMs + startMs,
    totalMs: result.totalMs + startMs,
    ...(result.textArrivalsMs && { textArrivalsMs: result.textArrivalsMs.map((arrival) => arrival + startMs) }),
  };
}

const failed = (error: string): StreamResult => ({ error, firstTokenMs: Number.NaN, totalMs: Number.NaN, text: '', textMessages: 0 });
