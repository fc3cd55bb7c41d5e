/**
 * Prints the Pothos schema, sorted, to `schema.graphql` (`npm run print-schema`).
 * `test/schema.test.ts` fails when the committed file differs.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from '../src/schema/index.js';

/** The schema as SDL, sorted so diffs stay small. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = fileURLToPath(new URL('../schema.graphql', import.meta.url));
  writeFileSync(path, printSortedSchema());
  console.log(`wrote ${path}`);
}
