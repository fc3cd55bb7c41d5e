/**
 * Structured JSON logs with pino: one logger per process (created in `main.ts`, or by `createApp`
 * when none is given) and passed down. Every line is one JSON object with `level`, `time`, `msg`
 * and the fields of the call (`requestId`, `generationId`, …). Secrets are redacted by pino itself,
 * whatever code logs them: see {@link REDACTED_PATHS}.
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Log levels `LOG_LEVEL` accepts, from most to least verbose, plus `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Paths whose values never reach a log line (replaced by `[Redacted]`): authorization headers
 * (in any `headers` object up to two levels down), API keys and tokens under their usual names,
 * at the top level and one level down.
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
];

/** Settings of {@link createLogger}. */
export interface LoggerOptions {
  /** Least severe level written; default `info`. */
  level?: LogLevel;
  /** Where the JSON lines go; default standard output. Tests pass an in-memory stream. */
  destination?: DestinationStream;
}

/** Creates the gateway's logger: JSON lines, ISO timestamps, secrets redacted, no pid/hostname noise. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: { service: 'graphql-ai-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: '[Redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
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
