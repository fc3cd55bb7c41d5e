/**
 * The only file that listens: loadConfig → createApp → start. Logs are JSON lines on standard
 * output (pino, `LOG_LEVEL`), buffered: a reader that stops reading loses lines instead of holding
 * up the server (see `operations/logger.ts`). A failed start (invalid configuration, database or
 * Redis unreachable, port taken) writes one plain line naming the problem to standard error and exits with
 * status 1. SIGINT/SIGTERM shut down gracefully (`SHUTDOWN_GRACE_MS`, see `App.stop`) and exit 0; a
 * second signal exits at once with 1 — except the same signal again within
 * {@link REPEATED_SIGNAL_WINDOW_MS}, which is the first one delivered twice (see there); a
 * shutdown still running {@link SHUTDOWN_OVERRUN_MS} after
 * the grace period (something it waits for never answers) writes one line to standard error and
 * exits with 1, or is killed when even that cannot run (see `operations/last-resort-exit.ts`).
 */
// A server runs its libraries in production mode unless told otherwise: graphql-js, for one,
// checks failed `instanceof` tests for a second copy of itself outside it, on every field of every
// event (a cost on every streamed token; docs/performance.md). Libraries read NODE_ENV when they
// load, so it is set before the application is imported.
process.env.NODE_ENV ??= 'production';
const { createApp } = await import('./app.js');
const { ConfigError, loadConfig } = await import('./config.js');
const { createLogger } = await import('./operations/logger.js');
const { armLastResortExit } = await import('./operations/last-resort-exit.js');

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    // Start-up failures are one plain line on standard error (for a human at a terminal), not a JSON log line.
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

/**
 * Milliseconds a shutdown may run past `SHUTDOWN_GRACE_MS` (closing sockets, providers, Redis)
 * before the process exits anyway, with status 1.
 */
const SHUTDOWN_OVERRUN_MS = 5_000;

/**
 * Milliseconds after the first signal within which the same signal again is taken as that one
 * delivered twice, not as a second request: Ctrl-C in a terminal signals the whole foreground
 * process group, and wrappers in it (`npm start`, `npx`, the `graphql-ai-gateway` command) pass
 * the signal they got on to their child as well, so the server gets one SIGINT per process above it,
 * milliseconds apart.
 */
const REPEATED_SIGNAL_WINDOW_MS = 1_000;

const logger = createLogger({ level: config.logLevel });
let app: Awaited<ReturnType<typeof createApp>>;
try {
  app = await createApp(config, { logger });
} catch (error) {
  if ((error as Error).name !== 'DatabaseUnavailableError') throw error;
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
let url: string;
try {
  ({ url } = await app.start());
} catch (error) {
  const message = (error as Error).message;
  process.stderr.write(`${message.startsWith('Cannot reach Redis') ? message : `Cannot listen on ${config.host}:${config.port}: ${message}`}\n`);
  process.exit(1);
}

let stopping: { signal: NodeJS.Signals; atMs: number } | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) {
      if (signal === stopping.signal && performance.now() - stopping.atMs < REPEATED_SIGNAL_WINDOW_MS) return;
      logger.warn({ signal }, `${signal} received again: exiting at once`);
      process.exit(1);
    }
    stopping = { signal, atMs: performance.now() };
    logger.info({ signal, graceMs: config.shutdownGraceMs }, `${signal} received, shutting down`);
    const deadlineMs = config.shutdownGraceMs + SHUTDOWN_OVERRUN_MS;
    armLastResortExit(deadlineMs, `Shutdown did not finish within ${deadlineMs} ms of ${signal}: exiting with status 1`);
    app.stop({ graceMs: config.shutdownGraceMs }).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  });
}

// After the signal handlers: whoever waits for this line to send a signal finds them in place.
logger.info({ url, graphqlUrl: `${url}/graphql` }, `GraphQL AI gateway listening on ${url} — GraphiQL and graphql-ws at ${url}/graphql`);

// After the signal handlers, so a signal during the availability probes still shuts down gracefully.
for (const provider of await app.registry.catalog()) {
  const models = provider.models.map((model) => model.id).join(', ') || 'no models';
  const state = provider.availability.available ? 'available' : `unavailable (${provider.availability.reason})`;
  logger.info({ provider: provider.id, available: provider.availability.available }, `provider ${provider.id}: ${state}; ${models}`);
}
