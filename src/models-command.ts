/**
 * `npm run models -- <command>`: the local models of `MODELS_DIR`, managed by hand.
 *
 * ```
 * npm run models -- list              # each model: id, size, what it can do
 * npm run models -- pull <uri>        # download hf:<owner>/<repository>/<file>.gguf or an http(s) URL
 * npm run models -- remove <id>       # delete <id>.gguf
 * ```
 *
 * Settings come from the environment and `CONFIG_FILE`, as for the server (`MODELS_DIR`,
 * `HF_ENDPOINT`, `HF_TOKEN`). A pull is the server's own download (`model-download.ts`): a progress
 * bar on a terminal, checked before it lands, resumable after Ctrl-C. Output is plain lines; a
 * failure is one line on standard error and status 1.
 */
import { rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from './config.js';
import { reportModelDownload } from './operations/model-download-reporter.js';
import { createModelFiles } from './providers/llama-cpp/llama-model-files.js';
import { ModelDownload } from './providers/llama-cpp/model-download.js';
import { ModelSourceError, parseModelSource } from './providers/llama-cpp/model-source.js';

const USAGE = 'usage: npm run models -- list | pull <hf:owner/repository/file.gguf | https://…> | remove <model id>';

/** A failure reported as one line and status 1. */
class CommandError extends Error {}

/** Writes the lines of `list`: id, size in MB, capabilities. */
async function list(modelsDir: string): Promise<void> {
  const files = createModelFiles(modelsDir);
  const models = await files.descriptors();
  const paths = await files.files();
  if (models.length === 0) {
    process.stdout.write(`no models in ${modelsDir}\n`);
    return;
  }
  for (const model of models) {
    const { size } = await stat(paths.get(model.id)!);
    process.stdout.write(`${model.id}\t${(size / 1e6).toFixed(1)} MB\t${model.capabilities.join(', ')}\n`);
  }
}

/** Downloads `uri` into `modelsDir`; Ctrl-C stops it (resumable). */
async function pull(uri: string, config: ReturnType<typeof loadConfig>, modelsDir: string): Promise<void> {
  let source;
  try {
    source = parseModelSource(uri, config.huggingFaceEndpoint);
  } catch (error) {
    if (error instanceof ModelSourceError) throw new CommandError(error.message);
    throw error;
  }
  const target = join(modelsDir, source.fileName);
  if (await stat(target).then(() => true, () => false)) {
    process.stdout.write(`${target} is there already\n`);
    return;
  }
  const progressBar = process.stdout.isTTY === true;
  const download = new ModelDownload({
    source,
    modelsDir,
    huggingFaceEndpoint: config.huggingFaceEndpoint,
    ...(config.huggingFaceToken !== undefined && { token: config.huggingFaceToken }),
    showProgressBar: progressBar,
    onChange: reportModelDownload(
      { info: (_fields, message) => process.stdout.write(`${message}\n`), warn: () => {} },
      source,
      { modelsDir, progressBar, command: 'pull' },
    ),
  });
  process.once('SIGINT', () => void download.stop());
  const state = await download.run();
  if (state.status === 'failed') throw new CommandError(`could not download ${uri}: ${state.reason}`);
  if (state.status === 'stopped') process.exitCode = 130;
}

/** Deletes model `id` of `modelsDir`. */
async function remove(id: string, modelsDir: string): Promise<void> {
  const path = (await createModelFiles(modelsDir).files()).get(id);
  if (!path) throw new CommandError(`no model ${id} in ${modelsDir} (npm run models -- list shows them)`);
  await rm(path);
  process.stdout.write(`removed ${path}\n`);
}

async function main(argumentsList: string[]): Promise<void> {
  const [command, argument, ...rest] = argumentsList;
  const config = loadConfig();
  const modelsDir = resolve(config.modelsDir);
  if (command === 'list' && argument === undefined) return list(modelsDir);
  if (command === 'pull' && argument !== undefined && rest.length === 0) return pull(argument, config, modelsDir);
  if (command === 'remove' && argument !== undefined && rest.length === 0) return remove(argument, modelsDir);
  throw new CommandError(USAGE);
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof CommandError || error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 1;
}
