/**
 * Downloads one model file into the models folder with node-llama-cpp's downloader
 * (`createModelDownloader`, which uses ipull: ranged requests, retries, resumable progress) —
 * checked and moved into place only when whole:
 *
 * 1. `HEAD` the file first ({@link fetchRemoteFileMetadata}): an offline machine or a refused
 *    request fails at once with one line, instead of in the downloader's long retry loop.
 * 2. The download goes to `<models>/.downloads/` (ignored by the model listing), so a cut download
 *    never leaves a file that looks like a model. A stopped or killed download resumes from its
 *    last whole chunk on the next run.
 * 3. The file's size, and its SHA-256 when the Hub gives one, are checked; a file that does not
 *    match is deleted and the download fails.
 * 4. `rename` moves it into the models folder (atomic on one file system).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fetchRemoteFileMetadata, type RemoteFileMetadata } from './hub-file-metadata.js';
import type { ModelSource } from './model-source.js';

/** The folder inside the models folder where downloads wait until they are whole and checked. */
export const DOWNLOADS_FOLDER = '.downloads';

/**
 * The suffix ipull (node-llama-cpp's download engine) gives a file while it downloads; the file
 * ends with ipull's record of the chunks done, which is what lets a later run resume.
 */
const IN_PROGRESS_SUFFIX = '.ipull';

/** Bound of the `HEAD` request that describes the file, ms. */
const METADATA_TIMEOUT_MS = 15_000;

/** Where a download stands. Sizes in bytes, speed in bytes per second, durations in ms. */
export type ModelDownloadState =
  | { status: 'idle' }
  | { status: 'checking' }
  | { status: 'downloading'; downloadedBytes: number; totalBytes: number; bytesPerSecond: number; msLeft?: number }
  | { status: 'verifying'; totalBytes: number }
  | { status: 'done'; path: string; totalBytes: number; durationMs: number }
  | { status: 'failed'; reason: string }
  | { status: 'stopped' };

/** Settings of one download. */
export interface ModelDownloadOptions {
  source: ModelSource;
  /** The models folder (absolute). */
  modelsDir: string;
  /** The Hub's base URL (`HF_ENDPOINT`), for `hf:` URIs. */
  huggingFaceEndpoint: string;
  /** `HF_TOKEN`: sent to the Hub only. */
  token?: string;
  /** Draw ipull's progress bar on the terminal (bytes, speed, time left); for a TTY. */
  showProgressBar?: boolean;
  /** Told of every change of {@link ModelDownload.state} (progress included). Must not throw. */
  onChange?(state: ModelDownloadState): void;
}

/** The part of node-llama-cpp's `ModelDownloader` this module uses. */
interface Downloader {
  readonly totalSize: number;
  readonly entrypointFilePath: string;
  download(): Promise<string>;
  cancel(options?: { deleteTempFile?: boolean }): Promise<void>;
}

/** One model file's download; see the module comment. */
export class ModelDownload {
  #state: ModelDownloadState = { status: 'idle' };
  #running: Promise<ModelDownloadState> | undefined;
  readonly #stop = new AbortController();
  #downloader: Downloader | undefined;
  readonly #options: ModelDownloadOptions;

  constructor(options: ModelDownloadOptions) {
    this.#options = options;
  }

  /** The model file being fetched. */
  get source(): ModelSource {
    return this.#options.source;
  }

  get state(): ModelDownloadState {
    return this.#state;
  }

  /** Whether it is under way (the model is coming but not there yet). */
  get active(): boolean {
    return this.#state.status === 'checking' || this.#state.status === 'downloading' || this.#state.status === 'verifying';
  }

  /** One line on where the download stands, e.g. `downloading the default model qwen: 43 % (211 of 491 MB, 12.5 MB/s, 22 s left)`. */
  describe(): string {
    return describeModelDownload(this.#options.source.modelId, this.#state);
  }

  /**
   * Runs the download (once: later calls return the first call's promise). Never throws.
   * @returns the final state: `done`, `failed` (with the reason, one line) or `stopped`.
   */
  run(): Promise<ModelDownloadState> {
    this.#running ??= this.#download().then(
      (state) => state,
      (error: unknown) => (this.#stop.signal.aborted ? this.#set({ status: 'stopped' }) : this.#set({ status: 'failed', reason: oneLine(error) })),
    );
    return this.#running;
  }

  /**
   * Stops a running download, keeping what arrived for the next run to resume; resolves once it
   * has stopped. A download that has not started never will.
   */
  async stop(): Promise<void> {
    this.#stop.abort(new Error('stopped'));
    if (!this.#running) return;
    const downloader = this.#downloader;
    if (downloader && this.#state.status === 'downloading') {
      await downloader.cancel({ deleteTempFile: false });
      // ipull 3.9 moves an unfinished file to its final name when cancelled; its progress record
      // still ends the file, so moving it back keeps the download resumable.
      await rename(downloader.entrypointFilePath, downloader.entrypointFilePath + IN_PROGRESS_SUFFIX).catch(() => {});
    }
    await this.#running;
  }

  #set(state: ModelDownloadState): ModelDownloadState {
    this.#state = state;
    this.#options.onChange?.(state);
    return state;
  }

  async #download(): Promise<ModelDownloadState> {
    const { source, modelsDir, huggingFaceEndpoint, token } = this.#options;
    const signal = this.#stop.signal;
    const startedAt = performance.now();
    this.#set({ status: 'checking' });
    const metadata = await fetchRemoteFileMetadata(source.metadataUrl, { timeoutMs: METADATA_TIMEOUT_MS, signal, ...(token !== undefined && { token }) });
    signal.throwIfAborted();

    const stagingDir = join(modelsDir, DOWNLOADS_FOLDER);
    await mkdir(stagingDir, { recursive: true });
    const { createModelDownloader } = await import('node-llama-cpp');
    const downloader: Downloader = await createModelDownloader({
      modelUri: source.uri,
      dirPath: stagingDir,
      fileName: source.fileName,
      showCliProgress: this.#options.showProgressBar ?? false,
      deleteTempFileOnCancel: false,
      // A whole file left from a run stopped while checking is checked again, not fetched again.
      skipExisting: true,
      endpoints: { huggingFace: `${huggingFaceEndpoint}/` },
      ...(token !== undefined && { tokens: { huggingFace: token } }),
      onProgress: ({ totalSize, downloadedSize, averageSpeed, estimatedTimeLeft }) => {
        if (this.#state.status !== 'downloading') return;
        this.#set({
          status: 'downloading',
          downloadedBytes: downloadedSize,
          totalBytes: totalSize,
          bytesPerSecond: averageSpeed,
          ...(Number.isFinite(estimatedTimeLeft) && { msLeft: estimatedTimeLeft }),
        });
      },
    });
    this.#downloader = downloader;
    if (signal.aborted) return this.#set({ status: 'stopped' });
    const totalBytes = downloader.totalSize;
    if (metadata.size !== undefined && metadata.size !== totalBytes) {
      throw new Error(`${source.uri}: the server describes ${metadata.size} bytes but sends ${totalBytes}`);
    }
    this.#set({ status: 'downloading', downloadedBytes: 0, totalBytes, bytesPerSecond: 0 });
    const stagedPath = await downloader.download();
    if (signal.aborted) return this.#set({ status: 'stopped' });

    this.#set({ status: 'verifying', totalBytes });
    await verifyFile(stagedPath, { ...metadata, size: totalBytes }, signal);
    const path = join(modelsDir, source.fileName);
    if (await exists(path)) {
      // A file of that name arrived meanwhile (put there by hand): it wins.
      await rm(stagedPath, { force: true });
    } else {
      await rename(stagedPath, path);
    }
    return this.#set({ status: 'done', path, totalBytes, durationMs: Math.round(performance.now() - startedAt) });
  }
}

/**
 * Checks a downloaded file against what the server said; deletes it when it does not match.
 * @throws Error naming the file and the mismatch (size, or SHA-256 with both digests), or the abort reason.
 */
async function verifyFile(path: string, expected: RemoteFileMetadata, signal: AbortSignal): Promise<void> {
  const { size } = await stat(path);
  let mismatch: string | undefined;
  if (expected.size !== undefined && size !== expected.size) mismatch = `it has ${size} bytes instead of ${expected.size}`;
  else if (expected.sha256 !== undefined) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
    const actual = hash.digest('hex');
    if (actual !== expected.sha256) mismatch = `its SHA-256 is ${actual}, the server's is ${expected.sha256}`;
  }
  if (mismatch) {
    await rm(path, { force: true });
    throw new Error(`the downloaded file is corrupt and was deleted: ${mismatch}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function oneLine(error: unknown): string {
  return ((error as Error)?.message ?? String(error)).split('\n')[0]!.trim();
}

/** `491.4 MB`: bytes in decimal megabytes (as download tools show them). */
function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** One line for `state` of the download of model `modelId` (for `/healthz`, `/readyz`, errors and logs). */
export function describeModelDownload(modelId: string, state: ModelDownloadState): string {
  switch (state.status) {
    case 'idle':
      return `the download of ${modelId} has not started`;
    case 'checking':
      return `downloading ${modelId}: asking the server for the file`;
    case 'downloading': {
      const percent = state.totalBytes > 0 ? Math.floor((state.downloadedBytes / state.totalBytes) * 100) : 0;
      const left = state.msLeft !== undefined && state.bytesPerSecond > 0 ? `, ${Math.ceil(state.msLeft / 1000)} s left` : '';
      return `downloading ${modelId}: ${percent} % (${megabytes(state.downloadedBytes)} of ${megabytes(state.totalBytes)}, ${megabytes(state.bytesPerSecond)}/s${left})`;
    }
    case 'verifying':
      return `downloading ${modelId}: checking the downloaded file (${megabytes(state.totalBytes)})`;
    case 'done':
      return `downloaded ${modelId} (${megabytes(state.totalBytes)} in ${(state.durationMs / 1000).toFixed(1)} s)`;
    case 'failed':
      return `the download of ${modelId} failed: ${state.reason}`;
    case 'stopped':
      return `the download of ${modelId} was stopped`;
  }
}
