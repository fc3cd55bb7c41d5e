/**
 * Who is calling: an API key presented over HTTP (`Authorization: Bearer`), REST (also
 * gpt4free's `g4f-api-key` header) or graphql-ws (`connectionParams.authorization`), checked
 * against the static keys (`API_KEYS`, `API_KEYS_FILE`), the master key (`MASTER_KEY`) and the
 * virtual keys of the database (`virtual-keys.ts`).
 *
 * Authentication is on as soon as any key exists: a static key or the master key is configured, or
 * the database holds a virtual key (revoked and expired ones included, so revoking every key never
 * opens the gateway; a key made on another instance turns it on here within `API_KEY_CACHE_TTL_MS`).
 * Only with none of these is it off, and callers are then told apart by their IP address (for the
 * limits): the connection's, or behind trusted reverse proxies (`TRUST_PROXY`) the one they name in
 * `X-Forwarded-For` (see {@link clientAddressOf}).
 */
import type { IncomingMessage } from 'node:http';
import type { ApiKeyRecord } from '../storage/api-key-store.js';
import { ApiKeyVerifier, bearerToken } from './api-keys.js';
import { apiKeyStatus, type VirtualKeys } from './virtual-keys.js';

/** The identity limits are counted against. */
export interface Caller {
  /**
   * `key:<first 16 hex digits of the key's sha256>` for a caller authenticated by a static key or
   * the master key, `key:<key id>` for a virtual key, or `ip:<client address>`
   * ({@link clientAddressOf}) when authentication is off. Never contains the key.
   */
  id: string;
  /** The virtual key's id, for a caller authenticated by one (its limits are read again at each start). */
  virtualKeyId?: string;
  /** Whether the caller presented the master key (admin operations). */
  admin?: boolean;
}

/**
 * The answer of an authentication: the caller (with the virtual key it presented, if any), or why
 * it is refused: 401 `UNAUTHORIZED` (no key, or a key that is not valid: unknown, expired, revoked),
 * 503 `DATABASE_UNAVAILABLE` (a virtual key could not be looked up just now).
 */
export type AuthenticationResult =
  | { ok: true; caller: Caller; virtualKey?: ApiKeyRecord }
  | { ok: false; code: 'UNAUTHORIZED' | 'DATABASE_UNAVAILABLE'; message: string };

/** The gpt4free API server's own key header, accepted on REST beside `Authorization: Bearer`. */
export const GPT4FREE_KEY_HEADER = 'g4f-api-key';

/** An address without the IPv4-mapped prefix (`::ffff:127.0.0.1` → `127.0.0.1`). */
function withoutIpv4MappedPrefix(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * The client's address, following Express' `trust proxy` with a hop count (the `proxy-addr` rule):
 * the addresses are the connection's, then those of `X-Forwarded-For` from right to left (each proxy
 * appends the address it received the request from); the first `trustedProxyHops` of them are
 * trusted proxies, so the answer is the address at index `trustedProxyHops` — or the leftmost one
 * when the header names fewer. `0` (`TRUST_PROXY=false`) ignores the header; `Infinity`
 * (`TRUST_PROXY=true`) takes its leftmost entry, which the client itself may have written.
 * Several `X-Forwarded-For` headers count as one list (Node joins them with `, `).
 * @returns an address as written (IPv4-mapped IPv6 shortened), or `unknown` when the socket has none.
 */
export function clientAddressOf(request: IncomingMessage | undefined, trustedProxyHops = 0): string {
  const socketAddress = withoutIpv4MappedPrefix(request?.socket?.remoteAddress ?? 'unknown');
  if (trustedProxyHops <= 0 || !request) return socketAddress;
  const header = request.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .reverse();
  const addresses = [socketAddress, ...forwarded];
  return withoutIpv4MappedPrefix(addresses[Math.min(trustedProxyHops, addresses.length - 1)]!);
}

/** Settings of an {@link Authenticator}. */
export interface AuthenticatorOptions {
  /**
   * Reverse proxies in front of the gateway whose `X-Forwarded-For` entries are believed (hops,
   * `Infinity` = all); names callers when authentication is off. Default 0: the connection's address.
   */
  trustedProxyHops?: number;
  /** sha256 hex digest of the master key (`MASTER_KEY`); absent = none. */
  masterKeyDigest?: string;
  /** The virtual keys (a database); absent = none. */
  virtualKeys?: VirtualKeys;
}

/** Checks presented API keys and names the caller. */
export class Authenticator {
  private readonly verifier: ApiKeyVerifier;
  private readonly masterVerifier: ApiKeyVerifier;
  private readonly trustedProxyHops: number;
  private readonly virtualKeys: VirtualKeys | undefined;
  /** Whether keys were last seen to be required (static ones, the master key, or a virtual key in the database). */
  private requiredNow: boolean;

  /** @param digests sha256 hex digests of the static keys. */
  constructor(digests: readonly string[], options: AuthenticatorOptions = {}) {
    this.verifier = new ApiKeyVerifier(digests);
    this.masterVerifier = new ApiKeyVerifier(options.masterKeyDigest === undefined ? [] : [options.masterKeyDigest]);
    this.trustedProxyHops = options.trustedProxyHops ?? 0;
    this.virtualKeys = options.virtualKeys;
    this.requiredNow = this.verifier.enabled || this.masterVerifier.enabled;
  }

  /** Whether keys are required, as last seen (see {@link required}); never goes back from true to false. */
  get enabled(): boolean {
    return this.requiredNow;
  }

  /** Whether a master key is configured. */
  get hasMasterKey(): boolean {
    return this.masterVerifier.enabled;
  }

  /**
   * Whether keys are required now: a static key or the master key is configured, or a virtual key
   * exists (asked of the database at most once per cache time to live while none did).
   */
  async required(): Promise<boolean> {
    if (!this.requiredNow && this.virtualKeys && (await this.virtualKeys.anyExist())) this.requiredNow = true;
    return this.requiredNow;
  }

  /** The caller when authentication is off: the client's address. */
  anonymousCaller(request: IncomingMessage | undefined): Caller {
    return { id: `ip:${clientAddressOf(request, this.trustedProxyHops)}` };
  }

  /**
   * An HTTP request (GraphQL or REST): the key from `Authorization: Bearer <key>`, or on REST
   * (`allowGpt4freeHeader`) from `g4f-api-key: <key>`.
   * @returns 401 when keys are required and none was sent (or `Authorization` uses another scheme),
   *   or the key is not valid; 503 when a virtual key cannot be looked up.
   */
  async authenticateRequest(request: IncomingMessage, options: { allowGpt4freeHeader?: boolean } = {}): Promise<AuthenticationResult> {
    if (!(await this.required())) return { ok: true, caller: this.anonymousCaller(request) };
    const authorization = request.headers.authorization;
    const headerKey = options.allowGpt4freeHeader ? request.headers[GPT4FREE_KEY_HEADER] : undefined;
    const key = bearerToken(authorization) ?? (typeof headerKey === 'string' && headerKey.trim() !== '' ? headerKey.trim() : undefined);
    if (key === undefined) {
      const how = options.allowGpt4freeHeader ? '"Authorization: Bearer <key>" (or "g4f-api-key: <key>")' : '"Authorization: Bearer <key>"';
      const why = authorization ? 'the Authorization header must use the Bearer scheme' : 'no API key was sent';
      return { ok: false, code: 'UNAUTHORIZED', message: `Authentication required: ${why}; send ${how}.` };
    }
    return this.check(key);
  }

  /**
   * A graphql-ws `connection_init` payload: `authorization: "Bearer <key>"` (also `Authorization`),
   * or `apiKey: "<key>"`.
   * @param request the WebSocket upgrade request (its address, or with trusted proxies its `X-Forwarded-For`, names the caller when authentication is off).
   * @returns `UNAUTHORIZED` when no key was sent or it is not valid (the socket is closed with 4403),
   *   `DATABASE_UNAVAILABLE` when a virtual key cannot be looked up.
   */
  async authenticateConnectionParams(connectionParams: Readonly<Record<string, unknown>> | undefined, request: IncomingMessage): Promise<AuthenticationResult> {
    if (!(await this.required())) return { ok: true, caller: this.anonymousCaller(request) };
    const authorization = connectionParams?.authorization ?? connectionParams?.Authorization;
    const apiKey = connectionParams?.apiKey;
    const key =
      (typeof authorization === 'string' ? bearerToken(authorization) : undefined) ??
      (typeof apiKey === 'string' && apiKey !== '' ? apiKey : undefined);
    if (key === undefined) {
      return { ok: false, code: 'UNAUTHORIZED', message: 'Forbidden: no API key; send connectionParams.authorization = "Bearer <key>"' };
    }
    return this.check(key);
  }

  /** A static key, the master key, then a virtual key (only keys of its form reach the database). */
  private async check(key: string): Promise<AuthenticationResult> {
    const digest = this.verifier.verify(key);
    if (digest !== undefined) return { ok: true, caller: { id: `key:${digest.slice(0, 16)}` } };
    const masterDigest = this.masterVerifier.verify(key);
    if (masterDigest !== undefined) return { ok: true, caller: { id: `key:${masterDigest.slice(0, 16)}`, admin: true } };
    let virtualKey: ApiKeyRecord | undefined;
    try {
      virtualKey = await this.virtualKeys?.findByKey(key);
    } catch {
      return { ok: false, code: 'DATABASE_UNAVAILABLE', message: 'The API key cannot be checked right now (the database does not answer); try again shortly.' };
    }
    if (!virtualKey) return { ok: false, code: 'UNAUTHORIZED', message: 'Unauthorized: the API key is not valid.' };
    const refusal = virtualKeyRefusal(virtualKey);
    if (refusal) return { ok: false, code: 'UNAUTHORIZED', message: refusal };
    return { ok: true, caller: { id: `key:${virtualKey.id}`, virtualKeyId: virtualKey.id }, virtualKey };
  }
}

/** Why a virtual key cannot be used now (`Unauthorized: the API key was revoked.` / `… expired at <time>.`), or undefined when it can. */
export function virtualKeyRefusal(record: ApiKeyRecord, now: Date = new Date()): string | undefined {
  const status = apiKeyStatus(record, now);
  if (status === 'revoked') return 'Unauthorized: the API key was revoked.';
  if (status === 'expired') return `Unauthorized: the API key expired at ${record.expiresAt!.toISOString()}.`;
  return undefined;
}
