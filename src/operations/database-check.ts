/**
 * The readiness check of the database (`/readyz`): whether it answers `select 1` (`Database.ping`).
 * Probes come from outside and need no key, so they never reach the database more than once per
 * {@link DatabaseCheckOptions.reuseMs}, and one ping runs at a time: probes that arrive while one
 * runs wait for it. A probe waits at most {@link DatabaseCheckOptions.timeoutMs}; a ping that has
 * not answered by then is reported as such, and later probes keep waiting for it (a connection
 * that stopped carrying bytes answers once the driver gives up on it).
 */
import type { Database } from '../storage/open-database.js';
import type { HealthCheck } from './operations.js';

/** How the database is checked. */
export interface DatabaseCheckOptions {
  /**
   * Longest wait for the ping, ms: below Kubernetes' default probe timeout (1 s), so that the
   * probe gets an answer that names the cause.
   * @default 500
   */
  timeoutMs?: number;
  /**
   * How long a ping's result answers later probes, ms.
   * @default 1000
   */
  reuseMs?: number;
}

/**
 * A check of `database`: undefined while it answers, else one line naming it (without a password)
 * and why: `database postgres://gateway:***@db:5432/gateway is unreachable (connect ECONNREFUSED …)`,
 * or `… did not answer within 500 ms`.
 */
export function createDatabaseCheck(database: Pick<Database, 'ping' | 'location'>, options: DatabaseCheckOptions = {}): HealthCheck {
  const timeoutMs = options.timeoutMs ?? 500;
  const reuseMs = options.reuseMs ?? 1000;
  let last: { atMs: number; reason: string | undefined } | undefined;
  let running: Promise<string | undefined> | undefined;

  const ping = (): Promise<string | undefined> =>
    (running ??= database.ping().then(
      () => undefined,
      (error: unknown) => `database ${database.location} is unreachable (${oneLine(error)})`,
    ).then((reason) => {
      last = { atMs: performance.now(), reason };
      running = undefined;
      return reason;
    }));

  return async () => {
    if (last && performance.now() - last.atMs < reuseMs) return last.reason;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`database ${database.location} did not answer within ${timeoutMs} ms`), timeoutMs);
    });
    try {
      return await Promise.race([ping(), late]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The first line of the message (or the code) of the error's innermost cause: Drizzle wraps the
 * driver's error (`connect ECONNREFUSED …`) in one that only names the query.
 */
function oneLine(error: unknown): string {
  let innermost = error;
  while (innermost instanceof Error && innermost.cause instanceof Error) innermost = innermost.cause;
  const { message, code } = innermost as { message?: string; code?: string };
  return (message || code || String(innermost)).split('\n')[0]!.trim();
}
