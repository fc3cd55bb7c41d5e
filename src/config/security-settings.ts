/**
 * Settings of authentication and limits: the `security` part of the configuration
 * (`docs/security.md`). Counts of 0 turn a limit off. Part of the settings tree of `settings.ts`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { hashApiKey, parseApiKeysFile } from './api-key-digests.js';
import { PERSISTED_OPERATIONS_FILE_MAX_BYTES, readPersistedOperationsFile, type PersistedOperationList } from './persisted-operations-file.js';
import { ConfigError, derived, setting } from './setting.js';
import { booleanString, commaList, positiveInteger, text, wholeNumber } from './value-schemas.js';

const apiKeysFile = setting({
  name: 'API_KEYS_FILE',
  schema: text,
  description: 'file of sha256 hex digests of API keys, one per line, `#` comments (see [Security](security.md))',
});

/**
 * The digests in the file named by `API_KEYS_FILE` (none when it is not set).
 * @throws ConfigError when the file cannot be read or a line is not a sha256 hex digest.
 */
function readApiKeysFile(path: string | undefined): string[] {
  if (path === undefined) return [];
  let contents: string;
  try {
    contents = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${apiKeysFile.name}: cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return parseApiKeysFile(contents, path);
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${apiKeysFile.name}: ${(error as Error).message}`);
  }
}

export const securitySettings = {
  /**
   * sha256 hex digests of the accepted API keys: `API_KEYS` (hashed when loaded; the plain keys are
   * not kept) and the lines of `API_KEYS_FILE`, without duplicates. Empty = authentication is off.
   */
  apiKeyDigests: derived(
    {
      keys: setting({
        name: 'API_KEYS',
        schema: () => commaList().transform((keys) => keys.map(hashApiKey)),
        default: [],
        documentedDefault: '— (**authentication off** unless `MASTER_KEY` or a virtual key exists)',
        description: 'comma-separated API keys clients must send (see [Security](security.md)); hashed when loaded',
      }),
      file: apiKeysFile,
    },
    ({ keys, file }) => [...new Set([...keys, ...readApiKeysFile(file)])],
  ),
  /**
   * sha256 hex digest of `MASTER_KEY` (hashed when loaded; the plain key is not kept), or undefined.
   * The master key authorises the admin operations on virtual keys and turns authentication on.
   */
  masterKeyDigest: setting({
    name: 'MASTER_KEY',
    schema: (name) =>
      z
        .string()
        .trim()
        .min(16, `${name} must be at least 16 characters (make one with: openssl rand -hex 32)`)
        .transform(hashApiKey),
    documentedDefault: '— (no admin operations)',
    description:
      'the admin key: authorises `createApiKey`, `updateApiKey`, `revokeApiKey` and `apiKeys` (virtual keys, see [Security](security.md#virtual-keys)), at least 16 characters; hashed when loaded; turns authentication on',
  }),
  apiKeyCacheTtlMs: setting({
    name: 'API_KEY_CACHE_TTL_MS',
    schema: positiveInteger,
    default: 5_000,
    description:
      'how long a virtual key read from the database (and a key\'s token use for its budget) is trusted before it is read again: a change made on another instance (a revocation) applies here within this time; on the instance that made it, at once',
  }),
  apiKeyCacheMax: setting({
    name: 'API_KEY_CACHE_MAX',
    schema: positiveInteger,
    default: 10_000,
    description: 'most virtual keys (and unknown keys) remembered in memory; the least recently used are forgotten first',
  }),
  estimatedCompletionTokens: setting({
    name: 'ESTIMATED_COMPLETION_TOKENS',
    schema: positiveInteger,
    default: 512,
    description:
      'completion tokens a chat request that sets no `maxTokens` is assumed to use when a key\'s tokens per minute and budget are checked before it starts (`DEFAULT_MAX_TOKENS` instead when set); the real usage settles it',
  }),
  rateLimitPerMinute: setting({
    name: 'RATE_LIMIT_PER_MINUTE',
    schema: wholeNumber,
    default: 60,
    description: 'generation starts per API key (per IP address when authentication is off) per minute, GraphQL and REST together; `0` = no limit',
  }),
  maxConcurrentGenerationsPerKey: setting({
    name: 'MAX_CONCURRENT_GENERATIONS_PER_KEY',
    schema: wholeNumber,
    default: 8,
    description: 'generations one API key (or IP address) may have running at once; `0` = no limit',
  }),
  graphqlMaxDepth: setting({
    name: 'GRAPHQL_MAX_DEPTH',
    schema: wholeNumber,
    default: 10,
    description: 'deepest field nesting of a GraphQL operation (fragments add no level); `0` = off',
  }),
  graphqlMaxCost: setting({
    name: 'GRAPHQL_MAX_COST',
    schema: wholeNumber,
    default: 5000,
    description: 'largest operation cost (graphql-armor: object 2, scalar 1, ×1.5 per level); `0` = off',
  }),
  graphqlMaxAliases: setting({ name: 'GRAPHQL_MAX_ALIASES', schema: wholeNumber, default: 15, description: 'most aliases in an operation; `0` = off' }),
  graphqlMaxTokens: setting({ name: 'GRAPHQL_MAX_TOKENS', schema: wholeNumber, default: 1000, description: 'most lexical tokens in a GraphQL document; `0` = off' }),
  graphqlMaxDirectives: setting({ name: 'GRAPHQL_MAX_DIRECTIVES', schema: wholeNumber, default: 50, description: 'most directives in an operation; `0` = off' }),
  csrfPrevention: setting({
    name: 'CSRF_PREVENTION',
    schema: booleanString,
    default: true,
    description: 'GraphQL requests a browser could send cross-site without a preflight (GET, form or `text/plain` POST) need the header `x-graphql-yoga-csrf`',
  }),
  introspection: setting({
    name: 'INTROSPECTION',
    schema: booleanString,
    default: true,
    description: 'answer introspection queries (GraphiQL needs them); `false` also hides "Did you mean …" hints',
  }),
  /** The only operations GraphQL runs, by id (`persisted-operations-file.ts`); undefined = any operation. */
  persistedOperations: setting({
    name: 'PERSISTED_OPERATIONS_FILE',
    schema: () =>
      text().transform((path, context): PersistedOperationList => {
        try {
          return readPersistedOperationsFile(path);
        } catch (error) {
          context.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
    documentedDefault: '— (any operation runs)',
    description:
      'a JSON file of the only GraphQL operations that run (persisted operations): `{"sha256:<hex>": "<operation text>"}`, as GraphQL Code Generator writes `persisted-documents.json`; clients send an id (`documentId`, or `extensions.persistedQuery.sha256Hash`) instead of a text, over HTTP, SSE and graphql-ws; read once at start, at most ' +
      `${PERSISTED_OPERATIONS_FILE_MAX_BYTES / 1024 / 1024} MiB (see [Security](security.md#persisted-operations))`,
  }),
  maxRequestBodyBytes: setting({
    name: 'MAX_REQUEST_BODY_BYTES',
    schema: positiveInteger,
    default: 1024 * 1024,
    description: 'largest request body of `/graphql` and `/v1` (413 beyond)',
  }),
  maxPromptCharacters: setting({
    name: 'MAX_PROMPT_CHARACTERS',
    schema: (name) => positiveInteger(name).max(8000, `${name} must be at most 8000`),
    default: 8000,
    description: 'longest image prompt and negative prompt, characters (at most 8000)',
  }),
  maxMessages: setting({ name: 'MAX_MESSAGES', schema: positiveInteger, default: 200, description: 'most messages in one chat request' }),
  maxMessageCharacters: setting({
    name: 'MAX_MESSAGE_CHARACTERS',
    schema: positiveInteger,
    default: 100_000,
    description: 'longest content of one chat message, characters',
  }),
  allowPrivateNetworkDownloads: setting({
    name: 'ALLOW_PRIVATE_NETWORK_DOWNLOADS',
    schema: booleanString,
    default: false,
    description: 'let image downloads reach private, loopback, link-local and unique-local addresses (see [Security](security.md))',
  }),
  /** Hop count: 0 = the connection's address, `Infinity` = the leftmost `X-Forwarded-For` entry. */
  trustedProxyHops: setting({
    name: 'TRUST_PROXY',
    schema: (name) =>
      z.union([z.boolean(), z.number(), z.string()]).transform((value, context) => {
        const hops = String(value).trim().toLowerCase();
        if (hops === 'true') return Number.POSITIVE_INFINITY;
        if (hops === 'false') return 0;
        if (/^\d+$/.test(hops)) return Number(hops);
        context.addIssue({ code: 'custom', message: `${name} must be true, false or a number of trusted proxy hops (0 or more)` });
        return z.NEVER;
      }),
    default: false,
    description:
      "reverse proxies in front of the server whose `X-Forwarded-For` names the client (for the per-IP limits when authentication is off): `false`/`0` = none (the connection's address), a number = that many proxy hops (Express' `trust proxy` hop count; `1` for one nginx), `true` = the leftmost entry (spoofable; see [Security](security.md))",
  }),
};
