/**
 * The open graphql-ws sockets of each virtual key, so that a key that stops being valid closes
 * them with 4403 (graphql-ws's Forbidden): at once when it is revoked (or its expiry moved into
 * the past) on this instance; otherwise at the next sweep, every `intervalMs`, which reads the
 * keys of the open sockets from the database again (a revocation on another instance) and checks
 * their expiry times.
 */
import type { Logger } from '../operations/logger.js';
import type { ApiKeyRecord } from '../storage/api-key-store.js';
import { virtualKeyRefusal } from './authentication.js';
import type { VirtualKeys } from './virtual-keys.js';

/** graphql-ws's close code for Forbidden (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md). */
export const FORBIDDEN_CLOSE_CODE = 4403;

/** What is needed of a socket (`ws`'s `WebSocket` has it). */
export interface KeySocket {
  close(code: number, reason?: string): void;
  once(event: 'close', listener: () => void): unknown;
}

/** Settings of {@link VirtualKeySockets}. */
export interface VirtualKeySocketsOptions {
  keys: VirtualKeys;
  /** Time between two sweeps, ms (`API_KEY_CACHE_TTL_MS`). */
  intervalMs: number;
  /** Told when a sweep cannot read the keys. */
  logger?: Pick<Logger, 'warn'>;
}

/** See the module comment. */
export class VirtualKeySockets {
  private readonly socketsByKey = new Map<string, { expiresAt?: Date; sockets: Set<KeySocket> }>();
  private readonly timer: NodeJS.Timeout;
  private sweeping = false;

  constructor(private readonly options: VirtualKeySocketsOptions) {
    options.keys.onChange((record) => this.check(record));
    this.timer = setInterval(() => void this.sweep(), options.intervalMs);
    this.timer.unref();
  }

  /** Remembers `socket` as opened with `key` until it closes. */
  add(key: ApiKeyRecord, socket: KeySocket): void {
    let entry = this.socketsByKey.get(key.id);
    if (!entry) {
      entry = { sockets: new Set() };
      this.socketsByKey.set(key.id, entry);
    }
    if (key.expiresAt) entry.expiresAt = key.expiresAt;
    else delete entry.expiresAt;
    const sockets = entry.sockets;
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && this.socketsByKey.get(key.id)?.sockets === sockets) this.socketsByKey.delete(key.id);
    });
  }

  /** Open sockets of key `id`. */
  count(id: string): number {
    return this.socketsByKey.get(id)?.sockets.size ?? 0;
  }

  /**
   * Closes the sockets of keys that are no longer valid: those past their expiry, and those the
   * database says are revoked, expired or gone. A database that does not answer is logged, and the
   * next sweep tries again.
   */
  async sweep(): Promise<void> {
    if (this.sweeping || this.socketsByKey.size === 0) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      for (const [id, entry] of this.socketsByKey) {
        if (entry.expiresAt && entry.expiresAt.getTime() <= now) this.closeKey(id, `Forbidden: the API key expired at ${entry.expiresAt.toISOString()}.`);
      }
      const ids = [...this.socketsByKey.keys()];
      const records = await this.options.keys.readAgain(ids);
      const found = new Set(records.map((record) => record.id));
      for (const record of records) this.check(record);
      for (const id of ids) if (!found.has(id)) this.closeKey(id, 'Forbidden: the API key no longer exists.');
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'cannot read the virtual keys of open sockets; trying again at the next sweep');
    } finally {
      this.sweeping = false;
    }
  }

  /** Stops the sweeps (the sockets themselves are closed by the WebSocket server). */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Closes every socket of key `id` with 4403 and `reason`. */
  closeKey(id: string, reason: string): void {
    const entry = this.socketsByKey.get(id);
    if (!entry) return;
    this.socketsByKey.delete(id);
    for (const socket of entry.sockets) socket.close(FORBIDDEN_CLOSE_CODE, reason);
  }

  /** A key as it is now: its sockets close when it is no longer valid; its expiry is kept for the sweeps. */
  private check(record: ApiKeyRecord): void {
    const entry = this.socketsByKey.get(record.id);
    if (!entry) return;
    const refusal = virtualKeyRefusal(record);
    if (refusal) {
      this.closeKey(record.id, refusal.replace(/^Unauthorized:/, 'Forbidden:'));
      return;
    }
    if (record.expiresAt) entry.expiresAt = record.expiresAt;
    else delete entry.expiresAt;
  }
}
