/**
 * The abort of one generation: an {@link AbortHandle} (no `AbortSignal` unless a provider asks for
 * one), which hands providers their stream options.
 *
 * In place of the generation's `AbortController` it cut what the gateway's young-generation
 * collections copy per streamed REST request from 2.4 to 1.8–1.95 kB (3,000 sequential 64-token
 * streams from the benchmark's fake upstream, first fifth left out; 0.64–0.69 instead of 1.2 kB
 * with no finished generation kept), and a generation no longer pays Node's `createAbortSignal`
 * (about 7 µs each in a CPU profile at concurrency 25). README, Performance; why in
 * `../providers/abort-handle.ts`.
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
   */
  streamOptions(deltaIntervalMs?: number): StreamOptions {
    return new GenerationStreamOptions(this, deltaIntervalMs);
  }
}

/** {@link GenerationAbort.streamOptions}'s options: `signal` made on first read. */
class GenerationStreamOptions implements StreamOptions {
  constructor(
    readonly abort: GenerationAbort,
    readonly deltaIntervalMs: number | undefined,
  ) {}

  get signal(): AbortSignal {
    return this.abort.toAbortSignal();
  }
}
