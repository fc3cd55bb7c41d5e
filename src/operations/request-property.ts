/**
 * A value kept on each HTTP request object (`IncomingMessage`) under a property of its own, for the
 * code that handles the request later (its id, its caller, its view of the generation service).
 *
 * A property rather than a `WeakMap` keyed by the request: on Node 20 (V8 11.3) a long-lived
 * `WeakMap` keeps the values of entries whose keys died young through young-generation collections
 * (measured in isolation: a small value copied once per entry, 73 bytes; when the value reaches its
 * key, both stay until a full collection, 233 bytes per entry). Here the three per-request
 * `WeakMap`s cost 0.4 kB copied per REST request (4.85 → 4.46 kB; README, Performance). A property
 * dies with the request.
 */
import type { IncomingMessage } from 'node:http';

/** One named value per request; the property is a symbol, so it cannot clash with Node's or a client's. */
export class RequestProperty<Value> {
  readonly #key: symbol;

  /** @param description names the symbol (seen in a debugger only). */
  constructor(description: string) {
    this.#key = Symbol(description);
  }

  /** The value set on this request, or undefined. */
  get(request: IncomingMessage): Value | undefined {
    return (request as unknown as Record<symbol, Value | undefined>)[this.#key];
  }

  /** Sets the value on this request (replacing any earlier one). */
  set(request: IncomingMessage, value: Value): void {
    (request as unknown as Record<symbol, Value>)[this.#key] = value;
  }
}
