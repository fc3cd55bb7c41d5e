/**
 * Starts the real app on 127.0.0.1, port 0, with the configuration built from environment-style
 * settings (as a user would set them). Defaults: the test models folder (`TEST_MODELS_DIR`), no default model download and one llama.cpp thread.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { TEST_MODELS_DIR } from './test-models-dir.js';

/** The folder holding the test models (`stories260K.gguf`): the setting `TEST_MODELS_DIR`, see `./test-models-dir.ts`. */
export const SHARED_MODELS_DIR = TEST_MODELS_DIR;

/** A started app and the URLs to reach it. */
export interface StartedApp {
  app: App;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `http://127.0.0.1:PORT/graphql` */
  graphqlUrl: string;
  /** `ws://127.0.0.1:PORT/graphql` */
  webSocketUrl: string;
  /** The app's DATA_DIR (a fresh temporary folder unless the settings name one). */
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * The settings every test instance starts with: the test models folder, one llama.cpp thread, a
 * small context, loopback on a free port, no network providers, a fresh temporary data folder.
 */
export function testAppDefaults(): Record<string, string> {
  return {
    MODELS_DIR: SHARED_MODELS_DIR,
    // No database unless a test names one (test/helpers/test-databases.ts): opening PGlite takes seconds.
    DATABASE_URL: 'none',
    // Nothing is downloaded unless a test points LLAMA_DEFAULT_MODEL and HF_ENDPOINT at a fake Hub.
    LLAMA_DEFAULT_MODEL: 'none',
    LLAMA_THREADS: '1',
    LLAMA_CONTEXT_SIZE: '512',
    HOST: '127.0.0.1',
    PORT: '0',
    // Tests never reach the real hosts: the network providers are on only where a test points them at a fake.
    HF_SPACES_ENABLED: 'false',
    POLLINATIONS_ENABLED: 'false',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-test-data-')),
  };
}

/**
 * Starts the app; `settings` override the defaults with environment-variable names and string values;
 * `options` go to `createApp` (e.g. a logger writing to memory).
 */
export async function startApp(settings: Record<string, string> = {}, options: Parameters<typeof createApp>[1] = {}): Promise<StartedApp> {
  const config = loadConfig({
    ...testAppDefaults(),
    // Quiet test output; a test that reads the logs passes its own logger.
    LOG_LEVEL: 'silent',
    // The fake upstreams serve images from 127.0.0.1, which downloads refuse by default (test/security covers that).
    ALLOW_PRIVATE_NETWORK_DOWNLOADS: 'true',
    // Some tests send GraphQL GET requests without the CSRF header (test/security covers CSRF prevention on).
    CSRF_PREVENTION: 'false',
    ...settings,
  });
  const app = await createApp(config, options);
  const { url } = await app.start();
  return {
    app,
    url,
    graphqlUrl: `${url}/graphql`,
    webSocketUrl: `${url.replace(/^http/, 'ws')}/graphql`,
    dataDir: config.dataDir,
    stop: () => app.stop(),
  };
}
