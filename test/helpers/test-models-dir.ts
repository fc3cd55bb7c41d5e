/**
 * Where the tests and the benchmark find the test models: the folder named by `TEST_MODELS_DIR`
 * (docs/development.md, "Running the tests"). It holds `stories260K.gguf`, and
 * `chat/stories260K-chatml.gguf` for the tests of a model with a chat template. A relative path is
 * taken from the repository root. This module is the one place that defines the setting and its
 * default; it imports nothing of the app, so the benchmark can use it too.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder. */
const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The test models folder that `environment` names (`TEST_MODELS_DIR`), as an absolute path. */
export function testModelsDir(environment: NodeJS.ProcessEnv = process.env): string {
  return resolve(REPOSITORY_ROOT, environment.TEST_MODELS_DIR || '../shared/models');
}

/** The test models folder of this process's environment. */
export const TEST_MODELS_DIR = testModelsDir();
