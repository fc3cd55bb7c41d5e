/**
 * GraphQL Code Generator's configuration for this example. The client preset reads the gateway's
 * schema (`schema.graphql` at the repository root) and the `graphql(…)` operations in `src/`, and
 * writes to `src/gql/`: a typed document (`TypedDocumentNode`) per operation, and
 * `persisted-documents.json` — each operation by its id (`sha256:` and the sha256 of its text), the
 * list a gateway started with `PERSISTED_OPERATIONS_FILE` accepts.
 *
 * Run from this folder: `npx graphql-codegen --config codegen.ts` (or `npm run codegen`).
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['src/**/*.ts', '!src/gql/**/*'],
  // Relative imports inside src/gql/ end in .js, as Node's ESM resolution (and TypeScript's NodeNext) needs.
  importExtension: '.js',
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: true,
      },
      config: {
        // Enums as unions of string literals ('STOP' | 'LENGTH' | …): no runtime objects to import.
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
