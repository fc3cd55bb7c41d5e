/**
 * The `llama-cpp` provider's default model: on a start with no `.gguf` file in the models folder
 * it downloads one (`LLAMA_DEFAULT_MODEL`, see `model-download.ts`), and until the file is there
 * the model is listed as coming, requests for it are answered `PROVIDER_UNAVAILABLE` with the
 * download's progress, and the provider's status says how far it got.
 */
import { ProviderError, type ModelDescriptor } from '../provider.js';
import { capabilitiesOf, type ModelFiles } from './llama-model-files.js';
import type { ModelDownload } from './model-download.js';
import { LLAMA_CPP_PROVIDER_ID } from './llama-unsupported-input.js';

/** The default model's download as the provider sees it. */
export interface DefaultModel {
  /** Starts the download when the models folder holds no model (not waiting for it). */
  start(): Promise<void>;
  /** The model while it downloads (listed so that requests for it get the download's progress), else undefined. */
  pending(): ModelDescriptor | undefined;
  /** One line while the download runs or after it failed, else undefined. */
  status(): string | undefined;
  /** One line while the download runs, else undefined. */
  loading(): string | undefined;
  /** The error for a request of model `id` while that model downloads, else undefined. */
  unavailable(id: string): ProviderError | undefined;
  /** Stops the download (resumable on the next start). */
  stop(): Promise<void>;
}

/** Ties `download` to the provider's model listing `files`. */
export function createDefaultModel(download: ModelDownload, files: ModelFiles): DefaultModel {
  const id = download.source.modelId;
  return {
    async start() {
      if ((await files.files()).size > 0) return;
      void download.run().then((state) => {
        if (state.status === 'done') files.refresh();
      });
    },
    pending: () => (download.active ? { id, capabilities: capabilitiesOf(false) } : undefined),
    status: () => (download.active || download.state.status === 'failed' ? download.describe() : undefined),
    loading: () => (download.active ? download.describe() : undefined),
    unavailable: (requested) =>
      requested === id && download.active ? new ProviderError({ code: 'PROVIDER_UNAVAILABLE', provider: LLAMA_CPP_PROVIDER_ID, message: download.describe() }) : undefined,
    stop: () => download.stop(),
  };
}
