/**
 * Virtual keys survive a restart of the app with its embedded database (PGlite in a temporary
 * `DATA_DIR`, `DATABASE_URL` unset): a key made before the restart works after it, with its limits;
 * and the gateway restarted with neither MASTER_KEY nor API_KEYS stays closed, because the database
 * still holds keys (revoked ones count), and does not log that authentication is off.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryLog } from '../helpers/memory-log.js';
import { createApiKey, graphqlWithKey, REVOKE_API_KEY } from '../helpers/api-key-operations.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const MASTER_KEY = 'master-key-0123456789abcdef';
const MODELS_QUERY = '{ models { id } }';
const START_CHAT = 'mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }';

describe('a restart with the embedded database', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gateway-keys-restart-'));
  // `DATABASE_URL: ''` is unset: the default embedded database in DATA_DIR/db.
  const settings = { DATA_DIR: dataDir, DATABASE_URL: '' };
  let current: StartedApp | undefined;
  afterAll(async () => {
    await current?.stop();
  });

  it('keeps keys, their limits and revocations; the gateway stays closed without MASTER_KEY', async () => {
    current = await startApp({ ...settings, MASTER_KEY });
    const kept = await createApiKey(current.graphqlUrl, MASTER_KEY, { name: 'kept' });
    const limited = await createApiKey(current.graphqlUrl, MASTER_KEY, { name: 'limited', limits: { allowedProviders: ['pollinations'] } });
    const revoked = await createApiKey(current.graphqlUrl, MASTER_KEY, { name: 'revoked' });
    await graphqlWithKey(current.graphqlUrl, MASTER_KEY, REVOKE_API_KEY, { id: revoked.apiKey.id });
    await current.stop();

    const log = memoryLog();
    current = await startApp(settings, { logger: log.logger });
    expect(log.lines().filter((line) => line.level >= 40).map((line) => line.msg)).not.toContainEqual(expect.stringMatching(/AUTHENTICATION IS OFF/));
    expect((await graphqlWithKey(current.graphqlUrl, kept.key, MODELS_QUERY)).status).toBe(200);
    const input = { model: 'stories260K', messages: [{ role: 'USER', content: 'hi' }], maxTokens: 4 };
    const forbidden = await graphqlWithKey(current.graphqlUrl, limited.key, START_CHAT, { input });
    expect(forbidden.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('may use providers pollinations'), extensions: { code: 'FORBIDDEN' } });
    const allowed = await graphqlWithKey(current.graphqlUrl, kept.key, START_CHAT, { input });
    expect(allowed.body.errors).toBeUndefined();

    const anonymous = await graphqlWithKey(current.graphqlUrl, undefined, MODELS_QUERY);
    expect(anonymous.status).toBe(401);
    const revokedAnswer = await graphqlWithKey(current.graphqlUrl, revoked.key, MODELS_QUERY);
    expect(revokedAnswer.body.errors?.[0]).toMatchObject({ message: 'Unauthorized: the API key was revoked.', extensions: { code: 'UNAUTHORIZED' } });
    // Without MASTER_KEY no one manages keys, not even with the old master key.
    expect((await graphqlWithKey(current.graphqlUrl, MASTER_KEY, MODELS_QUERY)).status).toBe(401);
  });
});
