/**
 * A logger whose JSON lines stay in memory, for tests that read what the gateway logged or wait
 * for a line to be written (woken by each write, never by a timer).
 */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/operations/logger.js';

/** One parsed log line. */
export type LogLine = Record<string, any>;

/** What {@link memoryLog} returns. */
export interface MemoryLog {
  /** The destination stream (for `createLogger({ destination })`). */
  stream: Writable;
  /** A logger at `info` writing to {@link stream}. */
  logger: Logger;
  /** Everything written so far. */
  text(): string;
  /** Every line written so far, parsed. */
  lines(): LogLine[];
  /**
   * Resolves with the first line (written before or after the call) that matches.
   * @throws Error when none came within `timeoutMs` ms (default 20 s), naming `what`.
   */
  waitFor(what: string, matches: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/** A fresh in-memory log. */
export function memoryLog(): MemoryLog {
  let text = '';
  const waiters = new Set<() => void>();
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      text += String(chunk);
      for (const wake of waiters) wake();
      callback();
    },
  });
  const lines = (): LogLine[] =>
    text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as LogLine);
  return {
    stream,
    logger: createLogger({ level: 'info', destination: stream }),
    text: () => text,
    lines,
    waitFor(what, matches, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = lines().find(matches);
          if (!line) return;
          finish();
          resolve(line);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no log line ${what} within ${timeoutMs} ms; the log:\n${text}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
