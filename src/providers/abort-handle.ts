/**
 * An abort that creates no `AbortSignal` unless something needs one.
 *
 * On Node 20 every `AbortSignal` outlives the next young-generation collection, even when nothing
 * references it any more, and so does whatever it references, while an `EventTarget` subclass with
 * a listener left on it is collected young. Every promoted byte is copied once, and a
 * young-generation collection pauses as long as its copying takes; an `AbortController` per
 * upstream request (the OpenAI-compatible provider's) or per generation adds to that copying on
 * every request (figures: docs/performance.md).
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
