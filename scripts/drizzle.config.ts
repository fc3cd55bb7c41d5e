/**
 * drizzle-kit's settings (`npm run db:generate`): the migrations of `src/storage/database-schema.ts`
 * are written to `src/storage/migrations/` as SQL, applied at start by `src/storage/open-database.ts`.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/storage/database-schema.ts',
  out: './src/storage/migrations',
});
