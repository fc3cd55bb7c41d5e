/**
 * The admin gate of usage (`isAdmin`: the master key's caller) and what each caller may ask: everyone's usage only for an admin, one's own for any identified caller, nothing
 * for an unidentified one. The reports here have no database, so an allowed call ends in
 * `DATABASE_NOT_CONFIGURED` — after the gate has let it through.
 */
import { describe, expect, it } from 'vitest';
import { UsageReports } from '../../src/operations/usage-reports.js';
import { isAdmin } from '../../src/security/admin-access.js';
import { usageAccessFor } from '../../src/security/usage-access.js';

describe('isAdmin', () => {
  it('is every caller without authentication, the master key\'s caller with it, and no other key or unidentified caller', () => {
    expect(isAdmin({ id: 'ip:192.0.2.1' }, false)).toBe(true);
    expect(isAdmin(undefined, false)).toBe(true);
    expect(isAdmin({ id: 'key:0123456789abcdef', admin: true }, true)).toBe(true);
    expect(isAdmin({ id: 'key:0123456789abcdef' }, true)).toBe(false);
    expect(isAdmin({ id: 'key:key_virtual', virtualKeyId: 'key_virtual' }, true)).toBe(false);
    expect(isAdmin({ id: 'ip:192.0.2.1' }, true)).toBe(false);
    expect(isAdmin(undefined, true)).toBe(false);
  });
});

describe('usageAccessFor', () => {
  const reports = new UsageReports(undefined);
  const code = (promise: Promise<unknown>) => promise.then(() => 'resolved', (error: { extensions?: { code?: string } }) => error.extensions?.code);

  it('lets an admin ask for everyone\'s usage and its own', async () => {
    const access = usageAccessFor(reports, { id: 'key:0123456789abcdef', admin: true }, true);
    expect(await code(access.usage({}))).toBe('DATABASE_NOT_CONFIGURED');
    expect(await code(access.myUsage({}))).toBe('DATABASE_NOT_CONFIGURED');
  });

  it('refuses everyone\'s usage to a caller who is not an admin, not its own', async () => {
    const access = usageAccessFor(reports, { id: 'ip:192.0.2.1' }, true);
    await expect(access.usage({})).rejects.toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: expect.stringContaining('myUsage') });
    expect(await code(access.myUsage({}))).toBe('DATABASE_NOT_CONFIGURED');
  });

  it('refuses both to an unidentified caller while keys are required', async () => {
    const access = usageAccessFor(reports, undefined, true);
    expect(await code(access.usage({}))).toBe('UNAUTHORIZED');
    expect(await code(access.myUsage({}))).toBe('UNAUTHORIZED');
  });
});
