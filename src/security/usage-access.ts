/**
 * Usage reports as one caller may ask for them: `myUsage` for any identified caller (its own rows:
 * the owner the generation service gives its generations, `Caller.id`), `usage` (everyone's) for
 * admins only ({@link isAdmin}).
 */
import type { UsageAccess, UsageReports } from '../operations/usage-reports.js';
import { isAdmin } from './admin-access.js';
import type { Caller } from './authentication.js';
import { SecurityError } from './security-error.js';

/**
 * The usage calls of `caller`.
 * @param caller undefined = an unauthenticated caller while keys are required: both calls are
 *   refused with SecurityError `UNAUTHORIZED` (a safety net; the HTTP and WebSocket checks refuse such callers first).
 * @param authenticationEnabled whether API keys are configured.
 */
export function usageAccessFor(reports: UsageReports, caller: Caller | undefined, authenticationEnabled: boolean): UsageAccess {
  const identified = (): Caller => {
    if (!caller) throw new SecurityError('UNAUTHORIZED', 'Authentication required: send an API key.');
    return caller;
  };
  return {
    async usage(query) {
      identified();
      if (!isAdmin(caller, authenticationEnabled)) {
        throw new SecurityError('FORBIDDEN', "Only an admin may read every caller's usage; myUsage (REST: scope=mine) gives your own.");
      }
      return reports.report(query);
    },
    async myUsage(query) {
      return reports.report(query, identified().id);
    },
  };
}
