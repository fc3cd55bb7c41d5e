/** The providers the configuration names, built (nothing is loaded or reached until first use or `start()`). */
import { resolve } from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './operations/logger.js';
import { reportModelDownload } from './operations/model-download-reporter.js';
import { createCopilotProvider } from './providers/copilot/copilot-provider.js';
import { createHuggingFaceSpaceProvider } from './providers/hf-space/hf-space-provider.js';
import { createLlamaCppProvider } from './providers/llama-cpp/llama-cpp-provider.js';
import { ModelDownload } from './providers/llama-cpp/model-download.js';
import { parseModelSource } from './providers/llama-cpp/model-source.js';
import { createOpenAICompatibleProvider } from './providers/openai-compatible/openai-compatible-provider.js';
import { createPollinationsProvider } from './providers/pollinations/pollinations-provider.js';
import type { Provider } from './providers/provider.js';

/**
 * Builds the providers named by the configuration, in priority order: `llama-cpp`, each
 * OpenAI-compatible upstream, `hf-space` (when it has spaces), `pollinations` (when enabled),
 * `copilot` (when enabled: it uses the upstream timeouts, and remembers conversations as long as
 * the gateway keeps them, `CONVERSATION_RETENTION_MS`).
 * @param options.logger where the default model's download is reported (none: not reported).
 */
export function createProviders(config: Config, options: { logger?: Logger } = {}): Provider[] {
  const providers: Provider[] = [
    createLlamaCppProvider({
      modelsDir: config.modelsDir,
      threads: config.llamaThreads,
      contextSize: config.llamaContextSize,
      sequences: config.llamaSequences,
      gpu: config.llamaGpu,
      ...(config.llamaDefaultModel !== 'none' && { defaultModel: createDefaultModelDownload(config, config.llamaDefaultModel, options.logger) }),
    }),
    ...config.upstreams.map((upstream) => createOpenAICompatibleProvider(upstream)),
  ];
  if (config.huggingFaceSpaces.length > 0) {
    providers.push(
      createHuggingFaceSpaceProvider({
        spaces: config.huggingFaceSpaces,
        ...(config.huggingFaceToken !== undefined && { token: config.huggingFaceToken }),
        timeoutMs: config.huggingFaceSpaceTimeoutMs,
        maxReads: config.huggingFaceSpaceMaxReads,
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
      }),
    );
  }
  if (config.pollinations) {
    providers.push(
      createPollinationsProvider({
        ...config.pollinations,
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
        idleTimeoutMs: config.upstreamIdleTimeoutMs,
        downloadTimeoutMs: config.imageDownloadTimeoutMs,
        maxImageBytes: config.imageDownloadMaxBytes,
      }),
    );
  }
  if (config.copilot) {
    const { baseURL, cookies, accessToken, harFile, userIdentityType, maxConversations } = config.copilot;
    providers.push(
      createCopilotProvider({
        baseURL,
        ...(cookies !== undefined && { cookies }),
        ...(accessToken !== undefined && { accessToken }),
        ...(harFile !== undefined && { harFile }),
        ...(userIdentityType !== undefined && { userIdentityType }),
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
        idleTimeoutMs: config.upstreamIdleTimeoutMs,
        maxConversations,
        conversationIdleMs: config.conversationRetentionMs,
      }),
    );
  }
  return providers;
}

/** The download of `LLAMA_DEFAULT_MODEL`, reported to `logger`: a progress bar on a terminal, else a line per 10 %. */
function createDefaultModelDownload(config: Config, uri: string, logger: Logger | undefined): ModelDownload {
  const source = parseModelSource(uri, config.huggingFaceEndpoint);
  const modelsDir = resolve(config.modelsDir);
  const progressBar = process.stdout.isTTY === true;
  return new ModelDownload({
    source,
    modelsDir,
    huggingFaceEndpoint: config.huggingFaceEndpoint,
    ...(config.huggingFaceToken !== undefined && { token: config.huggingFaceToken }),
    showProgressBar: progressBar,
    ...(logger && { onChange: reportModelDownload(logger, source, { modelsDir, progressBar }) }),
  });
}
