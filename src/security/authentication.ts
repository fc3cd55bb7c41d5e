/**
 * Who is calling: an API key presented over HTTP (`Authorization: Bearer`), REST (also
 * gpt4free's `g4f-api-key` header) or graphql-ws (`connectionParams.authorization`), checked
 * against the configured keys. With no keys configured, authentication is off and callers are
 * told apart by their IP address (for the limits): the connection's, or behind trusted reverse
 * proxies (`TRUST_PROXY`) the one they name in `X-Forwarded-For` (see {@link clientAddressOf}).
 */
import type { IncomingMessage } from 'node:http';
import { ApiKeyVerifier, bearerToken } from './api-keys.js';

/** The identity limits are counted against. */
export interface Caller {
  /**
   * `key:<first 16 hex digits of the key's sha256>` for a caller authenticated by key, or
   * `ip:<client address>` ({@link clientAddressOf}) when authentication is off. Never contains the key.
   */
  id: string;
}

/** The answer of an authentication: the caller, or why it is refused (401 `UNAUTHORIZED`, 403 `FORBIDDEN`). */
export type AuthenticationResult =
  | { ok: true; caller: Caller }
  | { ok: false; code: 'UNAUTHORIZED' | 'FORBIDDEN'; message: string };

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
}

/** Checks presented API keys and names the caller. */
export class Authenticator {
  private readonly verifier: ApiKeyVerifier;
  private readonly trustedProxyHops: number;

  /** @param digests sha256 hex digests of the accepted keys; empty = authentication off. */
  constructor(digests: readonly string[], options: AuthenticatorOptions = {}) {
    this.verifier = new ApiKeyVerifier(digests);
    this.trustedProxyHops = options.trustedProxyHops ?? 0;
  }

  /** Whether keys are required. */
  get enabled(): boolean {
    return this.verifier.enabled;
  }

  /**
   * An HTTP request (GraphQL or REST): the key from `Authorization: Bearer <key>`, or on REST
   * (`allowGpt4freeHeader`) from `g4f-api-key: <key>`.
   * @returns 401 when keys are required and none was sent (or `Authorization` uses another scheme),
   *   403 when the key is not a configured one.
   */
  authenticateRequest(request: IncomingMessage, options: { allowGpt4freeHeader?: boolean } = {}): AuthenticationResult {
    if (!this.enabled) return { ok: true, caller: { id: `ip:${clientAddressOf(request, this.trustedProxyHops)}` } };
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
   * @returns `UNAUTHORIZED` when no key was sent, `FORBIDDEN` when it is not a configured one (both close the socket with 4403).
   */
  authenticateConnectionParams(connectionParams: Readonly<Record<string, unknown>> | undefined, request: IncomingMessage): AuthenticationResult {
    if (!this.enabled) return { ok: true, caller: { id: `ip:${clientAddressOf(request, this.trustedProxyHops)}` } };
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

  private check(key: string): AuthenticationResult {
    const digest = this.verifier.verify(key);
    if (digest === undefined) return { ok: false, code: 'FORBIDDEN', message: 'Forbidden: the API key is not valid.' };
    return { ok: true, caller: { id: `key:${digest.slice(0, 16)}` } };
  }
}
