/**
 * Log lines of a model download: when it starts, how far it got (one line per 10 %, for logs that
 * are not a terminal: a terminal gets the downloader's own progress bar instead), and how it ended
 * — a failure as one warning that says what was tried and how to put a model in by hand. The
 * server's default model download logs them; `npm run models -- pull` prints them.
 */
import { describeModelDownload, type ModelDownloadState } from '../providers/llama-cpp/model-download.js';
import type { ModelSource } from '../providers/llama-cpp/model-source.js';

/** Where the lines go: a pino logger, or anything with the same two methods. */
export interface DownloadReportSink {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Percent steps between two progress lines. */
const PROGRESS_STEP_PERCENT = 10;

/**
 * The `onChange` of a model download that reports it to `logger`.
 * @param options.modelsDir where the model goes (named in the lines).
 * @param options.progressBar whether a progress bar shows the progress (then no progress lines).
 * @param options.command `pull` for `npm run models -- pull` (its own wording), else the default model's download.
 */
export function reportModelDownload(
  logger: DownloadReportSink,
  source: ModelSource,
  options: { modelsDir: string; progressBar: boolean; command?: 'pull' },
): (state: ModelDownloadState) => void {
  let reportedPercent = 0;
  const fields = { provider: 'llama-cpp', model: source.modelId, uri: source.uri };
  return (state) => {
    switch (state.status) {
      case 'checking':
        logger.info(
          fields,
          options.command === 'pull'
            ? `llama-cpp: downloading ${source.uri} into ${options.modelsDir}`
            : `llama-cpp: ${options.modelsDir} holds no model; downloading ${source.uri} (LLAMA_DEFAULT_MODEL)`,
        );
        return;
      case 'downloading': {
        if (options.progressBar || state.totalBytes <= 0) return;
        const percent = Math.floor((state.downloadedBytes / state.totalBytes) * 100);
        if (percent < reportedPercent + PROGRESS_STEP_PERCENT) return;
        reportedPercent = percent - (percent % PROGRESS_STEP_PERCENT);
        logger.info({ ...fields, percent: reportedPercent, downloadedBytes: state.downloadedBytes, totalBytes: state.totalBytes }, `llama-cpp: ${describeModelDownload(source.modelId, state)}`);
        return;
      }
      case 'done':
        logger.info({ ...fields, totalBytes: state.totalBytes, durationMs: state.durationMs }, `llama-cpp: ${describeModelDownload(source.modelId, state)} into ${options.modelsDir}`);
        return;
      case 'failed':
        logger.warn(
          { ...fields, reason: state.reason },
          options.command === 'pull'
            ? `llama-cpp: could not download ${source.uri}: ${state.reason}`
            : `llama-cpp: could not download ${source.uri}: ${state.reason}. Put a .gguf file in ${options.modelsDir} by hand (npm run models -- pull <uri>, or any download), or set LLAMA_DEFAULT_MODEL=none`,
        );
        return;
      case 'stopped':
        logger.info(fields, `llama-cpp: ${describeModelDownload(source.modelId, state)}; the next start resumes it`);
        return;
      default:
        return;
    }
  };
}
