/**
 * The only file that listens: loadConfig → createApp → start. Invalid configuration prints
 * one line naming the bad setting and exits with status 1. SIGINT/SIGTERM stop the app.
 */
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}

const app = createApp(config);
try {
  const { url } = await app.start();
  console.log(`GraphQL AI gateway listening on ${url} — GraphiQL and graphql-ws at ${url}/graphql`);
} catch (error) {
  console.error(`Cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
  process.exit(1);
}
for (const provider of await app.registry.catalog()) {
  const models = provider.models.map((model) => model.id).join(', ') || 'no models';
  const state = provider.availability.available ? 'available' : `unavailable (${provider.availability.reason})`;
  console.log(`provider ${provider.id}: ${state}; ${models}`);
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal} received, stopping`);
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('error while stopping:', error);
        process.exit(1);
      },
    );
  });
}
