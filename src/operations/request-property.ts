/**
 * A value kept on each HTTP request object (`IncomingMessage`) under a property of its own, for the
 * code that handles the request later (its id, its caller, its view of the generation service).
 *
 * A property rather than a `WeakMap` keyed by the request: on Node 20 (V8 11.3) a long-lived
 * `WeakMap` keeps the values of entries whose keys died young through young-generation collections
 * (and when the value reaches its key, both stay until a full collection), so per-request
 * `WeakMap`s add copying to every request (`docs/performance.md`). A property dies with the request.
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
