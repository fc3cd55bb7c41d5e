/**
 * Structured JSON logs with pino: one logger per process (created in `main.ts`, or by `createApp`
 * when none is given) and passed down. Every line is one JSON object with `level`, `time`, `msg`
 * and the fields of the call (`requestId`, `generationId`, …). Secrets are redacted by pino itself,
 * whatever code logs them: see {@link REDACTED_PATHS}.
 *
 * Standard output is written asynchronously through one bounded buffer per process, so that a log
 * reader that stops reading (a stalled log shipper, a pipe nobody drains) never stops the gateway
 * from serving or from exiting: lines that do not fit are dropped and counted (one warning line
 * gives the count once the reader catches up), and the synchronous flush pino makes at exit gives
 * up after {@link STDOUT_FLUSH_TIMEOUT_MS}.
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import type { LogLevel } from '../config.js';

export type { Logger } from 'pino';

/** Log levels `LOG_LEVEL` accepts (defined with the setting), from most to least verbose, plus `silent`. */
export { LOG_LEVELS, type LogLevel } from '../config.js';

/**
 * Paths whose values never reach a log line (replaced by `[Redacted]`): authorization and cookie
 * headers (in any `headers` object up to two levels down), API keys, tokens and session cookies
 * under their usual names, at the top level and one level down.
 */
export const REDACTED_PATHS: readonly string[] = [
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'connectionParams.authorization',
  '*.connectionParams.authorization',
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'token',
  '*.token',
  'huggingFaceToken',
  '*.huggingFaceToken',
  'password',
  '*.password',
  'cookie',
  'headers.cookie',
  '*.headers.cookie',
  'accessToken',
  '*.accessToken',
  'cookies',
  '*.cookies',
];

/**
 * Bytes of log lines held in memory while standard output does not take them (4 MiB). A line that
 * would not fit is dropped, not waited for.
 */
export const STDOUT_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Milliseconds a synchronous flush of standard output (pino's at process exit, and after a `fatal`
 * line) keeps retrying a reader that does not read; then the lines still held are dropped.
 */
export const STDOUT_FLUSH_TIMEOUT_MS = 1_000;

/** Settings of {@link createLogger}. */
export interface LoggerOptions {
  /** Least severe level written; default `info`. */
  level?: LogLevel;
  /**
   * Where the JSON lines go; default standard output, through the process's one bounded
   * asynchronous buffer (see {@link STDOUT_BUFFER_BYTES}). Tests pass an in-memory stream.
   */
  destination?: DestinationStream;
}

/**
 * Creates the gateway's logger: JSON lines, ISO timestamps, secrets redacted, no pid/hostname noise.
 * Loggers without a `destination` share the process's standard output buffer; the first of them
 * also writes the warning that counts lines dropped while standard output was not read.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: { service: 'graphql-ai-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: '[Redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.destination) return pino(settings, options.destination);
  const output = standardOutput();
  const logger = pino(settings, output.destination);
  output.reporter ??= logger;
  return logger;
}

/** The process's standard output as a pino destination, and what it dropped. */
interface StandardOutput {
  destination: ReturnType<typeof pino.destination>;
  /** Lines dropped since the last warning about them. */
  dropped: number;
  /** The logger that writes that warning (the first one made on standard output). */
  reporter?: Logger;
}

let sharedStandardOutput: StandardOutput | undefined;

/**
 * Standard output through sonic-boom (pino's destination), made once per process: one writer keeps
 * lines whole and in order, and pino's exit handler (which holds it only weakly) finds it alive.
 */
function standardOutput(): StandardOutput {
  if (sharedStandardOutput) return sharedStandardOutput;
  // Set only while a synchronous flush runs: the time after which it stops retrying.
  let flushGivesUpAt: number | undefined;
  const destination = pino.destination({
    dest: 1,
    sync: false,
    maxLength: STDOUT_BUFFER_BYTES,
    // Asynchronous writes retry a full pipe (sonic-boom waits 100 ms on a timer, the event loop runs
    // on) for as long as it stays full: the buffer bound drops what does not fit meanwhile. A
    // synchronous flush blocks the thread between retries, so it stops when its time is up.
    retryEAGAIN: () => flushGivesUpAt === undefined || performance.now() < flushGivesUpAt,
  });
  const output: StandardOutput = { destination, dropped: 0 };
  destination.on('drop', () => {
    output.dropped += 1;
  });
  // 'drain': everything held has been written, so the reader is reading again.
  destination.on('drain', () => {
    if (output.dropped === 0) return;
    const droppedLines = output.dropped;
    output.dropped = 0;
    output.reporter?.warn({ droppedLines }, `standard output was not read: ${droppedLines} log lines were dropped`);
  });
  const flushSync = destination.flushSync.bind(destination);
  destination.flushSync = () => {
    flushGivesUpAt = performance.now() + STDOUT_FLUSH_TIMEOUT_MS;
    try {
      flushSync();
    } catch {
      // The reader did not take the rest in time (EAGAIN given up), or is gone: those lines are lost.
    } finally {
      flushGivesUpAt = undefined;
    }
  };
  sharedStandardOutput = output;
  return output;
}

/** The logger shape Yoga's `logging` option takes (as `@graphql-yoga/logger` declares it). */
export type YogaLogger = Record<'debug' | 'info' | 'warn' | 'error', (...parts: unknown[]) => void>;

/**
 * Yoga's logger backed by pino (child `component: graphql-yoga`). Only the message text and errors
 * are kept: other arguments Yoga passes (request parameters, for instance) are dropped, so request
 * bodies and their secrets never reach a log line. Errors are logged with their stack under `err`.
 */
export function createYogaLogger(logger: Logger): YogaLogger {
  const child = logger.child({ component: 'graphql-yoga' });
  const forward =
    (level: Level) =>
    (...parts: unknown[]): void => {
      if (!child.isLevelEnabled(level)) return;
      const error = parts.find((part): part is Error => part instanceof Error);
      const message = parts.filter((part): part is string => typeof part === 'string').join(' ') || error?.message || 'graphql-yoga';
      if (error) child[level]({ err: error }, message);
      else child[level](message);
    };
  return { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
}

let fallback: Logger | undefined;

/** A shared logger at level `info` on standard output, for code built without one (e.g. a service made directly in a test). */
export function defaultLogger(): Logger {
  fallback ??= createLogger();
  return fallback;
}
