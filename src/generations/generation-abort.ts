/**
 * The abort of one generation: an {@link AbortHandle} (no `AbortSignal` unless a provider asks for
 * one), which hands providers their stream options.
 *
 * In place of the generation's `AbortController` it cuts what the gateway's young-generation
 * collections copy per streamed request, and a generation no longer pays Node's
 * `createAbortSignal` (figures in `docs/performance.md`; why in `../providers/abort-handle.ts`).
 */
import { AbortHandle } from '../providers/abort-handle.js';
import type { StreamOptions } from '../providers/provider.js';

/** A generation's abort; {@link streamOptions} gives the options of each provider call. */
export class GenerationAbort extends AbortHandle {
  /**
   * The options of one provider call: `abort` is this, `signal` the {@link toAbortSignal} made when
   * the provider first reads it (a prototype getter: a per-call object literal with a getter would
   * itself outlive young-generation collections, see the OpenAI-compatible provider's exchange).
   * @param deltaIntervalMs the consumer's coalescing window, ms (`StreamOptions.deltaIntervalMs`).
   * @param traceHeaders the attempt's trace context, with tracing on (`StreamOptions.traceHeaders`).
   */
  streamOptions(deltaIntervalMs?: number, traceHeaders?: Readonly<Record<string, string>>): StreamOptions {
    return new GenerationStreamOptions(this, deltaIntervalMs, traceHeaders);
  }
}

/** {@link GenerationAbort.streamOptions}'s options: `signal` made on first read. */
class GenerationStreamOptions implements StreamOptions {
  constructor(
    readonly abort: GenerationAbort,
    readonly deltaIntervalMs: number | undefined,
    readonly traceHeaders: Readonly<Record<string, string>> | undefined,
  ) {}

  get signal(): AbortSignal {
    return this.abort.toAbortSignal();
  }
}
