/**
 * Reading the configuration: the environment (and a `CONFIG_FILE`) through the settings tree of
 * `settings.ts` into one typed, validated {@link Config}.
 */
import { readFileSync } from 'node:fs';
import { configFileSetting, configurationSettings } from './settings.js';
import { ConfigError, readSettings, type ConfigurationOf, type Environment } from './setting.js';

/**
 * The whole service configuration: one property per node of `configurationSettings`, whose setting
 * describes it (`docs/configuration.md` lists them all). Durations in ms, sizes in bytes.
 */
export type Config = ConfigurationOf<typeof configurationSettings>;

/** Authentication and limits (`docs/security.md`). Counts of 0 turn a limit off. */
export type SecurityConfig = Config['security'];

/**
 * Reads and validates the configuration.
 * @param environment variables, usually `process.env`; `CONFIG_FILE` names a JSON object with the same
 *   keys (values may be strings or JSON values); the environment wins over the file, and an empty
 *   variable counts as unset.
 * @throws ConfigError with one line naming the bad setting: `Invalid configuration: NAME: message (got "value")`
 *   (the value left out for secrets), or `CONFIG_FILE: cannot read …`.
 */
export function loadConfig(environment: Environment = process.env): Config {
  let fileValues: Record<string, unknown> = {};
  const configFile = environment[configFileSetting.name];
  if (configFile) {
    try {
      const parsed = JSON.parse(readFileSync(configFile, 'utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      fileValues = parsed as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`${configFileSetting.name}: cannot read ${configFile}: ${(error as Error).message}`);
    }
  }
  const input: Record<string, unknown> = { ...fileValues };
  for (const [key, value] of Object.entries(environment)) {
    if (value !== undefined && value !== '') input[key] = value;
  }
  return readSettings(configurationSettings, input, environment);
}
