/**
 * Who is an admin: may read every caller's usage (`Query.usage`, `GET /v1/usage?scope=all`). Every
 * admin check of the gateway's usage reports calls this one function; the virtual keys' admin
 * operations require the master key itself (`api-key-administration.ts`).
 */
import type { Caller } from './authentication.js';

/**
 * Whether `caller` is an admin: with authentication on, a caller that presented the master key
 * (`MASTER_KEY`); with authentication off (no key of any kind exists), everyone — anyone who can
 * reach the port can already do anything.
 * @param authenticationEnabled whether keys are required.
 */
export function isAdmin(caller: Caller | undefined, authenticationEnabled: boolean): boolean {
  if (!authenticationEnabled) return true;
  return caller?.admin === true;
}
