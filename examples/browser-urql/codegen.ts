/**
 * GraphQL Code Generator's configuration for this example: the client preset reads the gateway's
 * schema (`schema.graphql` at the repository root) and the `graphql(…)` operation in `src/`, and
 * writes its typed document to `src/gql/`.
 *
 * Run from this folder: `npx graphql-codegen --config codegen.ts` (or `npm run codegen`).
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['src/**/*.ts', '!src/gql/**/*'],
  importExtension: '.js',
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        // Enums as unions of string literals ('STOP' | 'LENGTH' | …): no runtime objects in the bundle.
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
