/**
 * Settings of the `copilot` provider (Microsoft Copilot's web chat as gpt4free speaks it,
 * `docs/protocols.md` §5). Part of the provider settings of `provider-settings.ts`; see `setting.ts`
 * for how a setting is defined. The session's cookies and token are secrets: never logged, never
 * repeated in a configuration error.
 */
import { z } from 'zod';
import { derived, setting, type SourceValues } from './setting.js';
import { booleanString, httpUrl, positiveInteger, text } from './value-schemas.js';

/**
 * The built-in aliases of the `copilot` provider's default model, as gpt4free has them (`gpt-4`,
 * `gpt-4o` → `Copilot`), present only while `COPILOT_ENABLED` is set. Like every built-in alias they
 * give way to a provider that serves a model of that very name (an OpenAI upstream listing `gpt-4o`).
 */
export const COPILOT_MODEL_ALIASES: Readonly<Record<string, string[]>> = {
  'gpt-4': ['copilot:Copilot'],
  'gpt-4o': ['copilot:Copilot'],
};

/** `COPILOT_ENABLED`; the built-in {@link COPILOT_MODEL_ALIASES} depend on it too. */
export const copilotEnabled = setting({
  name: 'COPILOT_ENABLED',
  schema: booleanString,
  default: false,
  description:
    'the `copilot` provider (Microsoft Copilot, as gpt4free speaks it): off by default, since it needs a browser session and breaks whenever the site changes (see [Providers](providers.md#copilot))',
});

const copilotSources = {
  enabled: copilotEnabled,
  baseURL: setting({
    name: 'COPILOT_BASE_URL',
    schema: httpUrl,
    default: 'https://copilot.microsoft.com',
    description: 'the Copilot site: `POST {base}/c/api/start`, and the chat WebSocket at the same host (`wss://`)',
  }),
  cookies: setting({
    name: 'COPILOT_COOKIES',
    schema: (name) => z.string().regex(/[^=;\s]+=/, `${name} must be a Cookie header: name=value; name2=value2`),
    description: "the `Cookie` header a browser sends to the site (`name=value; …`, with `__Host-copilot-anon` for anonymous use); wins over the HAR file's; never logged",
  }),
  accessToken: setting({
    name: 'COPILOT_ACCESS_TOKEN',
    schema: () => z.string().min(1),
    description: "a signed-in session's access token (sent as `Authorization: Bearer …` and the socket's `accessToken`); wins over the HAR file's; never logged",
  }),
  harFile: setting({
    name: 'COPILOT_HAR_FILE',
    schema: text,
    description:
      "a HAR export of the site from the browser's network tab (at most 64 MiB): the cookies, token and `User-Agent` of its requests to the site are used; read again when it changes",
  }),
  userIdentityType: setting({
    name: 'COPILOT_USER_IDENTITY_TYPE',
    schema: text,
    description: "with `COPILOT_ACCESS_TOKEN`: the session's `x-useridentitytype` (e.g. `google`), when the HAR file does not give it",
  }),
  maxConversations: setting({
    name: 'COPILOT_MAX_CONVERSATIONS',
    schema: positiveInteger,
    default: 10_000,
    description:
      'most gateway conversations whose Copilot conversation is remembered (in this process, each for `CONVERSATION_RETENTION_MS` after its last turn); the least recently used are forgotten first',
  }),
};

/** The `copilot` provider's settings when `COPILOT_ENABLED` is set (`docs/protocols.md` §5). */
export type CopilotConfig = Omit<SourceValues<typeof copilotSources>, 'enabled'>;

/** The provider's settings (`copilot` in the configuration): its settings when enabled, else undefined. */
export const copilotSettings = {
  copilot: derived(copilotSources, ({ enabled, ...copilot }): CopilotConfig | undefined => (enabled ? copilot : undefined)),
};
