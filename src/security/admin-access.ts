/**
 * Who is an admin: may read every caller's usage (`Query.usage`, `GET /v1/usage?scope=all`).
 *
 * PLACEHOLDER until `MASTER_KEY` (issue 21, virtual keys) lands: that work replaces the body of
 * {@link isAdmin} with its master-key check, and nothing else needs to change — every admin check
 * of the gateway calls this one function.
 */
import type { Caller } from './authentication.js';

/**
 * Whether `caller` is an admin. Today: with authentication on, a caller that presented one of the
 * static keys (`API_KEYS`, `API_KEYS_FILE` — the only keys there are, so every authenticated caller);
 * with authentication off, everyone (anyone who can reach the port can already do anything).
 * An unauthenticated caller while keys are required is not. (Every caller with a `key:` id holds a
 * static key today; once virtual keys name their callers `key:<key id>` too, this test no longer
 * tells them apart — which is why the master-key work replaces it.)
 * @param authenticationEnabled whether API keys are configured.
 */
export function isAdmin(caller: Caller | undefined, authenticationEnabled: boolean): boolean {
  if (!authenticationEnabled) return true;
  return caller !== undefined && caller.id.startsWith('key:');
}
