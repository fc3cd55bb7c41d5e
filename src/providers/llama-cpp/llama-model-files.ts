/**
 * The models of the `llama-cpp` provider: the `.gguf` files of one folder, and what each can do —
 * decided without loading it, so that `listModels()` (called on every request) stays cheap.
 *
 * Every model serves `chat` and `json-schema` (replies constrained by a grammar work on any model).
 * A model has `tools` when its file has a chat template (`tokenizer.chat_template`, read from the
 * GGUF header): node-llama-cpp then renders the chat with a chat wrapper, and every chat wrapper of
 * node-llama-cpp 3.21 has a function-call syntax (`settings.functions`: the model's own, e.g.
 * Llama 3.1's or Qwen's, or node-llama-cpp's generic `||call: name(params)` for ChatML, Llama 2,
 * Gemma, …; https://node-llama-cpp.withcat.ai/guide/function-calling). Once a model is loaded its
 * resolved chat wrapper decides instead (see {@link ModelFiles.setLoadedCapabilities}). Never
 * `vision` (no multimodal projector support here) nor `reasoning`.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ModelCapability, ModelDescriptor } from '../provider.js';
import { readChatTemplate } from './gguf-metadata.js';

/** How long a read of the models folder is reused, ms (models added later show up after this). */
const MODEL_LIST_CACHE_MS = 2_000;

/** What every local model can do. */
const BASE_CAPABILITIES: readonly ModelCapability[] = ['chat', 'json-schema'];

/** The models folder, read at most once per {@link MODEL_LIST_CACHE_MS}. */
export interface ModelFiles {
  /** The `.gguf` files by model id (the file name without its extension). */
  files(): Promise<Map<string, string>>;
  /** Every model with its capabilities. */
  descriptors(): Promise<ModelDescriptor[]>;
  /** Records what a loaded model can do (from its resolved chat wrapper); it wins over the file's header. */
  setLoadedCapabilities(id: string, capabilities: ModelCapability[]): void;
  /** Forgets the loaded models' capabilities (when they are disposed). */
  clearLoadedCapabilities(): void;
  /** Reads the folder again on the next call (a model was just added). */
  refresh(): void;
}

/** The capabilities a model's header gives: `tools` with a chat template. */
export function capabilitiesOf(hasChatTemplate: boolean, wrapperHasFunctions = hasChatTemplate): ModelCapability[] {
  return hasChatTemplate && wrapperHasFunctions ? [...BASE_CAPABILITIES, 'tools'] : [...BASE_CAPABILITIES];
}

/** Reads `modelsDir` (an absolute path) for `.gguf` files; a missing folder has none. */
export function createModelFiles(modelsDir: string): ModelFiles {
  let listing: { files: Promise<Map<string, string>>; descriptors: Promise<ModelDescriptor[]>; readAt: number } | undefined;
  /** Header capabilities per file path, kept while the file's size and modification time stay the same. */
  const headerCapabilities = new Map<string, { size: number; modifiedAt: number; capabilities: Promise<ModelCapability[]> }>();
  const loadedCapabilities = new Map<string, ModelCapability[]>();

  async function readFiles(): Promise<Map<string, string>> {
    const files = new Map<string, string>();
    let names: string[];
    try {
      names = await readdir(modelsDir);
    } catch {
      return files;
    }
    for (const name of names.sort()) {
      if (extname(name).toLowerCase() === '.gguf') files.set(basename(name, extname(name)), join(modelsDir, name));
    }
    return files;
  }

  /** A file's capabilities from its header; a file that cannot be read has the base ones (loading it will say why). */
  async function capabilitiesOfFile(path: string): Promise<ModelCapability[]> {
    let size = -1;
    let modifiedAt = -1;
    try {
      ({ size, mtimeMs: modifiedAt } = await stat(path));
    } catch {
      // Gone since the folder was read: the base capabilities, read again next time.
    }
    const cached = headerCapabilities.get(path);
    if (cached && cached.size === size && cached.modifiedAt === modifiedAt) return cached.capabilities;
    const capabilities = readChatTemplate(path).then(
      (template) => capabilitiesOf(Boolean(template)),
      () => capabilitiesOf(false),
    );
    headerCapabilities.set(path, { size, modifiedAt, capabilities });
    return capabilities;
  }

  async function describe(files: Promise<Map<string, string>>): Promise<ModelDescriptor[]> {
    const entries = [...(await files)];
    for (const path of headerCapabilities.keys()) {
      if (!entries.some(([, filePath]) => filePath === path)) headerCapabilities.delete(path);
    }
    return Promise.all(entries.map(async ([id, path]) => ({ id, capabilities: await capabilitiesOfFile(path) })));
  }

  function current(): NonNullable<typeof listing> {
    const now = performance.now();
    if (!listing || now - listing.readAt >= MODEL_LIST_CACHE_MS) {
      const files = readFiles();
      listing = { files, descriptors: describe(files), readAt: now };
    }
    return listing;
  }

  return {
    files: () => current().files,
    async descriptors() {
      const descriptors = await current().descriptors;
      return descriptors.map(({ id, capabilities }) => ({ id, capabilities: [...(loadedCapabilities.get(id) ?? capabilities)] }));
    },
    setLoadedCapabilities: (id, capabilities) => void loadedCapabilities.set(id, capabilities),
    clearLoadedCapabilities: () => loadedCapabilities.clear(),
    refresh: () => {
      listing = undefined;
    },
  };
}
