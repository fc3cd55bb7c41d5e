/**
 * Resident memory per open idle subscription, then tokens to all of them.
 *
 * Runs on a gateway process of its own (fresh heap, started with `--expose-gc`), so that earlier
 * phases' garbage and retained generations do not blur the reading. Every subscription is a
 * `chatCompletion`: its own generation and its own upstream request, which the fake upstream holds
 * after the role chunk — the generation is running but idle, as while a model thinks before its
 * first token. Resident memory (`VmRSS`) is read after two full collections before the WebSockets
 * are opened and again once every subscription is open (at the upstream: held; at the client:
 * `ChatCompletionStarted` received); the difference, sockets included, over the subscriptions is
 * the figure. Then the upstream releases every stream and each text must be exact.
 */
import { setMaxListeners } from 'node:events';
import type { Client } from 'graphql-ws';
import { residentBytes, type ManagedProcess } from './child-processes.js';
import { FailureTally } from './failure-tally.js';
import type { IdleSubscriptionsResult } from './report.js';
import { connectWebSocketClient, streamWebSocket, type StreamResult } from './stream-clients.js';
import type { UpstreamControl } from './upstream-control.js';
import { BENCH_PROVIDER } from './upstream-paths.js';

/** How one variant runs. Durations in ms. */
export interface IdleSubscriptionsOptions {
  variant: IdleSubscriptionsResult['variant'];
  subscriptions: number;
  /** WebSockets the subscriptions are spread over (round robin). */
  sockets: number;
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

/** The gateway process under test: its handle (for the `gc` command) and its graphql-ws URL. */
export interface IdleGateway {
  handle: ManagedProcess;
  webSocketURL: string;
}

/** Asks the gateway process for two full collections; returns whether it could and its used heap, bytes. */
async function collectGarbage(gateway: ManagedProcess): Promise<{ collected: boolean; heapUsedBytes: number }> {
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

/** Held subscriptions spread over `clients`, with a count of those whose first event arrived. */
function openSubscriptions(clients: Client[], count: number, model: string, timeoutMs: number, signal: AbortSignal) {
  let opened = 0;
  let reportAllOpen!: () => void;
  const allOpen = new Promise<void>((resolve) => {
    reportAllOpen = resolve;
  });
  const onOpen = () => {
    opened += 1;
    if (opened === count) reportAllOpen();
  };
  const input = { provider: BENCH_PROVIDER, model, messages: [{ role: 'USER' as const, content: 'Tell me a story.' }] };
  const results = Promise.all(Array.from({ length: count }, (_, index) => streamWebSocket(clients[index % clients.length]!, input, { timeoutMs, signal, onOpen })));
  return { results, allOpen, opened: () => opened };
}

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

  // Warm-up: the same work on a smaller scale, on sockets closed before the first reading.
  if (options.warmupSubscriptions > 0) {
    const warmClients = await connectClients(gateway.webSocketURL, Math.min(options.sockets, 20));
    const controller = new AbortController();
    setMaxListeners(0, controller.signal); // one listener per subscription
    const warm = openSubscriptions(warmClients, options.warmupSubscriptions, options.model, streamTimeoutMs, controller.signal);
    const held = await upstream.waitHeld(options.warmupSubscriptions, options.openTimeoutMs);
    await upstream.release();
    const results = await warm.results;
    await disposeClients(warmClients);
    const warmTally = new FailureTally();
    for (const result of results) warmTally.check(result, options.expectedText);
    if (held < options.warmupSubscriptions || warmTally.total > 0) {
      throw new Error(`warm-up: ${held} of ${options.warmupSubscriptions} held, ${warmTally.total} failed (${warmTally.counts.examples[0] ?? ''})`);
    }
  }

  const before = await collectGarbage(gateway.handle);
  const residentBeforeBytes = residentBytes(processId);
  const openStartedAt = performance.now();
  options.log(`idle subscriptions (${options.variant}): connecting ${options.sockets} WebSockets`);
  const clients = await connectClients(gateway.webSocketURL, options.sockets);
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per subscription
  let results: StreamResult[] = [];
  try {
    options.log(`idle subscriptions (${options.variant}): opening ${options.subscriptions} subscriptions`);
    const open = openSubscriptions(clients, options.subscriptions, options.model, streamTimeoutMs, controller.signal);
    const upstreamHeld = await upstream.waitHeld(options.subscriptions, options.openTimeoutMs);
    const remainingMs = Math.max(0, options.openTimeoutMs - (performance.now() - openStartedAt));
    const clientsOpen = await within(open.allOpen, remainingMs);
    const openSeconds = (performance.now() - openStartedAt) / 1000;
    const allOpen = upstreamHeld >= options.subscriptions && clientsOpen;
    if (!allOpen) tally.example(`not all open after ${options.openTimeoutMs / 1000} s: ${upstreamHeld} held by the upstream, ${open.opened()} started at the client`);

    const after = await collectGarbage(gateway.handle);
    const residentOpenBytes = residentBytes(processId);
    options.log(`idle subscriptions (${options.variant}): ${upstreamHeld} open in ${openSeconds.toFixed(1)} s; releasing the upstream`);

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
