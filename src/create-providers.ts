/** The providers the configuration names, built (nothing is loaded or reached until first use). */
import type { Config } from './config.js';
import { createHuggingFaceSpaceProvider } from './providers/hf-space/hf-space-provider.js';
import { createLlamaCppProvider } from './providers/llama-cpp/llama-cpp-provider.js';
import { createOpenAICompatibleProvider } from './providers/openai-compatible/openai-compatible-provider.js';
import { createPollinationsProvider } from './providers/pollinations/pollinations-provider.js';
import type { Provider } from './providers/provider.js';

/**
 * Builds the providers named by the configuration, in priority order: `llama-cpp`, each
 * OpenAI-compatible upstream, `hf-space` (when it has spaces), `pollinations` (when enabled).
 */
export function createProviders(config: Config): Provider[] {
  const providers: Provider[] = [
    createLlamaCppProvider({
      modelsDir: config.modelsDir,
      threads: config.llamaThreads,
      contextSize: config.llamaContextSize,
      sequences: config.llamaSequences,
      gpu: config.llamaGpu,
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
  return providers;
}
