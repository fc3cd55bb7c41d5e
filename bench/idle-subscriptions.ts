/**
 * Resident memory per open idle subscription, then tokens to all of them.
 *
 * Runs on a gateway process of its own (fresh heap, started with `--expose-gc`), so that earlier
 * phases' garbage and retained generations do not blur the reading. Two kinds of subscription:
 * - `multiplexed` and `one-per-socket`: every subscription is a `chatCompletion` (start and
 *   stream): its own generation and its own upstream request, which the fake upstream holds after
 *   the role chunk — the generation is running but idle, as while a model thinks before its first
 *   token. The figure is the cost of a whole in-flight generation with its subscription.
 * - `followers`: `generations` generations are started first (`startChatCompletion` over HTTP) and
 *   held by the upstream; then every subscription is a `chatCompletionEvents` follower of one of
 *   them (subscriptions / generations each). The generations are in both readings, so the figure is
 *   the subscription alone, waiting for data.
 *
 * Resident memory (`VmRSS`) is read after two full collections before the WebSockets are opened
 * (for followers: once the upstream holds every generation) and again once every subscription is
 * open (at the upstream: held; at the client: the first event, `ChatCompletionStarted`, received);
 * the difference, sockets included, over the subscriptions is the figure. Then the upstream
 * releases every stream and each text must be exact.
 */
import { setMaxListeners } from 'node:events';
import type { Client } from 'graphql-ws';
import { residentBytes, type ManagedProcess } from './child-processes.js';
import { FailureTally } from './failure-tally.js';
import type { IdleSubscriptionsResult } from './report.js';
import { connectWebSocketClient, followWebSocket, startChatCompletion, streamWebSocket, type ChatCompletionInput, type StreamOptions, type StreamResult } from './stream-clients.js';
import type { UpstreamControl } from './upstream-control.js';
import { BENCH_PROVIDER } from './upstream-paths.js';

/** How one variant runs. Durations in ms. */
export interface IdleSubscriptionsOptions {
  variant: IdleSubscriptionsResult['variant'];
  subscriptions: number;
  /** WebSockets the subscriptions are spread over (round robin). */
  sockets: number;
  /**
   * `followers` only: generations started before the first reading; the subscriptions follow them,
   * `subscriptions / generations` each (the others: one generation per subscription, ignored).
   */
  generations?: number;
  /** A held stream, e.g. `bench?hold=1&tokens=16`. */
  model: string;
  tokensPerStream: number;
  expectedText: string;
  /** Subscriptions opened, released and checked before the first reading (JIT, pools, buffers). */
  warmupSubscriptions: number;
  openTimeoutMs: number;
  flowTimeoutMs: number;
  log: (message: string) => void;
}

/** The gateway process under test: its handle (for the `gc` command), its graphql-ws URL and its `http://…/graphql` URL. */
export interface IdleGateway {
  handle: ManagedProcess;
  webSocketURL: string;
  graphqlURL: string;
}

/** Asks the gateway process for two full collections; returns whether it could and its used heap, bytes. */
export async function collectGarbage(gateway: ManagedProcess): Promise<{ collected: boolean; heapUsedBytes: number }> {
  gateway.send({ command: 'gc' });
  const answer = await gateway.nextMessage<{ gc?: boolean; heapUsedBytes?: number; error?: string }>(30_000);
  if (answer.gc === undefined) throw new Error(`gateway gc command: ${answer.error ?? JSON.stringify(answer)}`);
  return { collected: answer.gc, heapUsedBytes: answer.heapUsedBytes ?? Number.NaN };
}

/** Opens `count` graphql-ws clients, at most 200 handshakes at a time. */
async function connectClients(url: string, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  try {
    for (let start = 0; start < count; start += 200) {
      const batch = await Promise.all(Array.from({ length: Math.min(200, count - start) }, () => connectWebSocketClient(url, 30_000)));
      clients.push(...batch);
    }
  } catch (error) {
    await disposeClients(clients);
    throw error;
  }
  return clients;
}

/** Closes clients, bounded to 10 s. */
async function disposeClients(clients: Client[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(clients.map((client) => client.dispose())),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 10_000);
    }),
  ]);
  clearTimeout(timer);
}

/** One subscription on `client`; `index` is its number among those opened together. */
type Subscribe = (client: Client, index: number, options: StreamOptions) => Promise<StreamResult>;

/** Subscriptions spread over `clients` (round robin), with a count of those whose first event arrived. */
function openSubscriptions(clients: Client[], count: number, subscribe: Subscribe, timeoutMs: number, signal: AbortSignal) {
  let opened = 0;
  let reportAllOpen!: () => void;
  const allOpen = new Promise<void>((resolve) => {
    reportAllOpen = resolve;
  });
  const onOpen = () => {
    opened += 1;
    if (opened === count) reportAllOpen();
  };
  const results = Promise.all(Array.from({ length: count }, (_, index) => subscribe(clients[index % clients.length]!, index, { timeoutMs, signal, onOpen })));
  return { results, allOpen, opened: () => opened };
}

/** The input of every generation of this phase. */
const chatInput = (model: string): ChatCompletionInput => ({ provider: BENCH_PROVIDER, model, messages: [{ role: 'USER', content: 'Tell me a story.' }] });

/** Start and stream: each subscription is a `chatCompletion` with its own generation. */
const startAndStream = (model: string): Subscribe => (client, _index, options) => streamWebSocket(client, chatInput(model), options);

/**
 * Starts `count` generations with `startChatCompletion` over HTTP (at most 50 requests at a time)
 * and waits until the upstream holds all of them. Returns their ids and the held count.
 * @throws Error when a start fails or not all are held within `timeoutMs`.
 */
async function startHeldGenerations(graphqlURL: string, count: number, model: string, upstream: UpstreamControl, timeoutMs: number): Promise<{ ids: string[]; held: number }> {
  const startedAt = performance.now();
  const ids: string[] = [];
  try {
    for (let start = 0; start < count; start += 50) {
      ids.push(...(await Promise.all(Array.from({ length: Math.min(50, count - start) }, () => startChatCompletion(graphqlURL, chatInput(model), timeoutMs)))));
    }
    const held = await upstream.waitHeld(count, Math.max(0, Math.round(timeoutMs - (performance.now() - startedAt))));
    if (held < count) throw new Error(`${held} of ${count} started generations held by the upstream after ${timeoutMs / 1000} s`);
    return { ids, held };
  } catch (error) {
    await upstream.release().catch(() => {}); // the next variant must not find these held
    throw error;
  }
}

/**
 * Followers of `ids`: subscription `index` of `count` follows generation `floor(index × ids / count)`,
 * so each generation gets `count / ids` followers (±1) and, with round-robin sockets, its followers
 * are spread over the WebSockets rather than all on one.
 */
const follow = (ids: string[], count: number): Subscribe => (client, index, options) => followWebSocket(client, ids[Math.floor((index * ids.length) / count)]!, options);

/** Resolves with `true` when `promise` settles within `milliseconds`, else `false`. */
async function within(promise: Promise<unknown>, milliseconds: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), milliseconds);
    }),
  ]);
  clearTimeout(timer);
  return settled;
}

/**
 * Runs one variant on `gateway`.
 * @throws Error when the warm-up fails or the gateway does not answer the `gc` command; failures of
 *   the measured subscriptions are counted in the result instead.
 */
export async function measureIdleSubscriptions(options: IdleSubscriptionsOptions, gateway: IdleGateway, upstream: UpstreamControl): Promise<IdleSubscriptionsResult> {
  const processId = gateway.handle.child.pid;
  const streamTimeoutMs = options.openTimeoutMs + options.flowTimeoutMs + 10_000;
  const tally = new FailureTally();

  const followers = options.variant === 'followers';
  const generations = followers ? Math.max(1, Math.min(options.generations ?? 1, options.subscriptions)) : options.subscriptions;

  // Warm-up: the same work on a smaller scale, on sockets closed before the first reading.
  if (options.warmupSubscriptions > 0) {
    const warmGenerations = followers ? Math.max(1, Math.round((options.warmupSubscriptions * generations) / options.subscriptions)) : options.warmupSubscriptions;
    const controller = new AbortController();
    setMaxListeners(0, controller.signal); // one listener per subscription
    let warmClients: Client[] = [];
    try {
      const warmIds = followers ? (await startHeldGenerations(gateway.graphqlURL, warmGenerations, options.model, upstream, options.openTimeoutMs)).ids : [];
      warmClients = await connectClients(gateway.webSocketURL, Math.min(options.sockets, 20));
      const subscribe = followers ? follow(warmIds, options.warmupSubscriptions) : startAndStream(options.model);
      const warm = openSubscriptions(warmClients, options.warmupSubscriptions, subscribe, streamTimeoutMs, controller.signal);
      const held = await upstream.waitHeld(warmGenerations, options.openTimeoutMs);
      const warmOpen = await within(warm.allOpen, options.openTimeoutMs);
      await upstream.release();
      const results = await warm.results;
      const warmTally = new FailureTally();
      for (const result of results) warmTally.check(result, options.expectedText);
      if (held < warmGenerations || !warmOpen || warmTally.total > 0) {
        throw new Error(`warm-up: ${held} of ${warmGenerations} held, ${warm.opened()} of ${options.warmupSubscriptions} open, ${warmTally.total} failed (${warmTally.counts.examples[0] ?? ''})`);
      }
    } finally {
      controller.abort();
      await upstream.release().catch(() => {});
      await disposeClients(warmClients);
    }
  }

  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per subscription
  let clients: Client[] = [];
  let results: StreamResult[] = [];
  try {
    // Followers: the generations run (held) before the first reading, so it counts them.
    let generationIds: string[] = [];
    if (followers) {
      options.log(`idle subscriptions (${options.variant}): starting ${generations} generations`);
      generationIds = (await startHeldGenerations(gateway.graphqlURL, generations, options.model, upstream, options.openTimeoutMs)).ids;
    }
    const before = await collectGarbage(gateway.handle);
    const residentBeforeBytes = residentBytes(processId);
    const openStartedAt = performance.now();
    options.log(`idle subscriptions (${options.variant}): connecting ${options.sockets} WebSockets`);
    clients = await connectClients(gateway.webSocketURL, options.sockets);
    options.log(`idle subscriptions (${options.variant}): opening ${options.subscriptions} subscriptions`);
    const subscribe = followers ? follow(generationIds, options.subscriptions) : startAndStream(options.model);
    const open = openSubscriptions(clients, options.subscriptions, subscribe, streamTimeoutMs, controller.signal);
    const upstreamHeld = await upstream.waitHeld(generations, options.openTimeoutMs);
    const remainingMs = Math.max(0, options.openTimeoutMs - (performance.now() - openStartedAt));
    const clientsOpen = await within(open.allOpen, remainingMs);
    const openSeconds = (performance.now() - openStartedAt) / 1000;
    const allOpen = upstreamHeld >= generations && clientsOpen;
    if (!allOpen) tally.example(`not all open after ${options.openTimeoutMs / 1000} s: ${upstreamHeld} held by the upstream, ${open.opened()} started at the client`);

    const after = await collectGarbage(gateway.handle);
    const residentOpenBytes = residentBytes(processId);
    options.log(`idle subscriptions (${options.variant}): ${open.opened()} open (${upstreamHeld} upstream streams held) in ${openSeconds.toFixed(1)} s; releasing the upstream`);

    const flowStartedAt = performance.now();
    await upstream.release();
    const finished = await within(open.results, options.flowTimeoutMs);
    if (!finished) {
      tally.example(`not all finished within ${options.flowTimeoutMs / 1000} s of the release`);
      controller.abort();
    }
    results = await open.results;
    const flowSeconds = (performance.now() - flowStartedAt) / 1000;
    let completeAndExact = 0;
    for (const result of results) if (tally.check(result, options.expectedText)) completeAndExact += 1;
    return {
      variant: options.variant,
      subscriptions: options.subscriptions,
      sockets: options.sockets,
      generations,
      garbageCollected: before.collected && after.collected,
      residentBeforeBytes,
      residentOpenBytes,
      residentBytesPerSubscription: (residentOpenBytes - residentBeforeBytes) / options.subscriptions,
      heapBytesPerSubscription: (after.heapUsedBytes - before.heapUsedBytes) / options.subscriptions,
      upstreamHeld,
      openSeconds,
      tokensPerStream: options.tokensPerStream,
      flowSeconds,
      completeAndExact,
      failures: tally.counts,
    };
  } finally {
    controller.abort();
    await upstream.release().catch(() => {});
    await disposeClients(clients);
  }
}
