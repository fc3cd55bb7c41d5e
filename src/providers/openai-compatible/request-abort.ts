/**
 * The abort side of one upstream request, which creates no `AbortSignal` unless `fetch` needs one.
 *
 * undici's `request` takes an `EventEmitter` as its signal as well as an `AbortSignal`: it reads
 * `aborted` and `reason` and listens for `'abort'` (https://undici.nodejs.org/#/docs/api/Dispatcher?id=parameter-requestoptions,
 * `signal: AbortSignal | events.EventEmitter | null`). On Node 20 every `AbortSignal` created
 * outlives young-generation collections: in a loop of 3,000 streamed chat requests the provider's
 * own `AbortController` made the scavenger copy 4.4 instead of 2.8 kB per request (README,
 * Performance), which lengthens the pauses that make the time-to-first-token tail. Chat streams
 * use undici's `request`, so they abort through this emitter alone; `fetch` (image replies)
 * needs a real signal, made on first use and aborted with the same reason.
 */
import { EventEmitter } from 'node:events';

/** An abort that undici's `request` accepts as its `signal`; `signal` gives an `AbortSignal` for `fetch`. */
export class RequestAbort extends EventEmitter {
  /** Whether `abort` was called (read by undici before it starts the request). */
  aborted = false;
  /** What `abort` was called with (undici rejects the request with it). */
  reason: unknown = undefined;
  #controller: AbortController | undefined;

  /** Aborts once with `reason`: emits `'abort'` and aborts the `AbortSignal` if one was made; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#controller?.abort(reason);
    this.emit('abort');
  }

  /** An `AbortSignal` that follows this abort (made on first use, already aborted when this is). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }
}
