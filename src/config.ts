/**
 * Configuration: environment variables (and an optional JSON file named by `CONFIG_FILE`) turned
 * into one typed, validated `Config`. Each setting is defined once in `config/settings.ts` (and the
 * provider and security settings beside it); `docs/configuration.md` is printed from those
 * definitions by `npm run print-configuration`. The layers the configuration configures import
 * from here, never the other way round.
 */
export { hashApiKey, parseApiKeysFile, API_KEY_DIGEST_PATTERN } from './config/api-key-digests.js';
export { loadConfig, type Config, type SecurityConfig } from './config/load-config.js';
export type { CopilotConfig } from './config/copilot-settings.js';
export type { OpenAICompatibleUpstreamConfig } from './config/provider-settings.js';
export type { HuggingFaceSpaceConfig } from './config/space-settings.js';
export { ConfigError } from './config/setting.js';
export { normalizePersistedOperationId, type PersistedOperationList } from './config/persisted-operations-file.js';
export { LOG_LEVELS, type LogLevel } from './config/value-schemas.js';
