import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql@16 ships CommonJS (`main`) and ESM (`module`) builds. Node (and so graphql-yoga,
    // loaded from node_modules) takes the CommonJS one; point our own imports at the same file so
    // there is one copy of GraphQLError and the scalar types, as at run time.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // expect.poll waits for a condition; on a loaded 2-core machine one second is too short.
    expect: { poll: { timeout: 15_000 } },
    hookTimeout: 60_000,
    // Test files start servers and load llama.cpp; two cores run two files at once at most.
    maxWorkers: 2,
  },
});
