/**
 * An abort that creates no `AbortSignal` unless something needs one.
 *
 * On Node 20.20.2 every `AbortSignal` outlives the next young-generation collection, even when
 * nothing references it any more, and so does whatever it references (`--trace-gc-nvp`, 400,000
 * iterations: 335 bytes promoted per `AbortController` whose one listener was removed, 462 bytes
 * when its signal also held a small object of its own), while an `EventTarget` subclass with a
 * listener left on it is collected young (0 bytes). Every promoted byte is copied once, and a
 * young-generation collection pauses as long as its copying takes. Measured in the gateway: the
 * OpenAI-compatible provider's own `AbortController` per upstream request made the scavenger copy
 * 4.4 instead of 2.8 kB per streamed chat request, the generation's 2.4 instead of 1.8–1.95 kB
 * (README, Performance).
 *
 * undici's `request` takes this as its `signal` as it is: it reads `aborted` and `reason` and
 * listens for `'abort'` on an `EventTarget` or `EventEmitter`
 * (https://undici.nodejs.org/#/docs/api/Dispatcher?id=parameter-requestoptions). `fetch`,
 * `AbortSignal.any` and libraries need a real signal: {@link AbortHandle.toAbortSignal}.
 */
import type { AbortSignalLike } from './provider.js';

/**
 * The reading side of `AbortSignal` (`aborted`, `reason`, `throwIfAborted()`, the `'abort'` event,
 * dispatched once) plus `abort(reason)`. {@link toAbortSignal} gives a real `AbortSignal` that
 * follows it, made on first use, already aborted when this is.
 */
export class AbortHandle extends EventTarget implements AbortSignalLike {
  /** Whether {@link abort} was called. */
  aborted = false;
  /** What {@link abort} was called with (an `AbortError` `DOMException` when called without one). */
  reason: unknown = undefined;
  #controller: AbortController | undefined;

  /** Aborts once with `reason`: sets `aborted` and `reason`, aborts the `AbortSignal` if one was made, then dispatches `'abort'`; later calls do nothing. */
  abort(reason: unknown = new DOMException('This operation was aborted', 'AbortError')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#controller?.abort(reason);
    this.dispatchEvent(new Event('abort'));
  }

  /** Throws {@link reason} when aborted, as `AbortSignal.prototype.throwIfAborted` does. */
  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** A real `AbortSignal` that aborts with this (the same one on every call). */
  toAbortSignal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }
}
