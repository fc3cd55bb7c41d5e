/**
 * What the generation service tells an observer (metrics, logs) about its work. Every method is
 * optional and called synchronously from the service, so an observer must be quick and must not
 * throw (the service ignores what it returns). `combineObservers` fans one call out to several.
 */
import type { GenerationOrigin } from './generation-inputs.js';
import type { GenerationRecord } from './generation-records.js';

/** Hooks the generation service calls; see the module comment. */
export interface GenerationObserver {
  /**
   * A generation was accepted and recorded (status `running`); its first event is on its way.
   * `origin`: where the start came from (the HTTP request's id); empty for a queued job a worker runs.
   */
  generationStarted?(record: GenerationRecord, origin: GenerationOrigin): void;
  /**
   * A provider delivered content for the generation: a text delta (as the provider sent it, before
   * coalescing) or an image. The first call for a record is its first content (time to first token).
   */
  contentReceived?(record: GenerationRecord): void;
  /** The generation ended: `record.status` is `completed`, `failed` or `cancelled` and its terminal event is out. */
  generationFinished?(record: GenerationRecord): void;
  /** A subscriber started following a generation's events (graphql-ws, GraphQL over SSE, or a REST reply). */
  subscriptionOpened?(): void;
  /** A subscriber stopped following (the events ended, or it closed early). */
  subscriptionClosed?(): void;
}

/** One observer that forwards every call to each of `observers`, in order; a throwing observer does not stop the others. */
export function combineObservers(...observers: Array<GenerationObserver | undefined>): GenerationObserver {
  const present = observers.filter((observer): observer is GenerationObserver => observer !== undefined);
  const forward =
    <Method extends keyof GenerationObserver>(method: Method) =>
    (...parameters: Parameters<NonNullable<GenerationObserver[Method]>>): void => {
      for (const observer of present) {
        try {
          (observer[method] as ((...values: typeof parameters) => void) | undefined)?.(...parameters);
        } catch {
          // An observer is never allowed to disturb a generation.
        }
      }
    };
  return {
    generationStarted: forward('generationStarted'),
    contentReceived: forward('contentReceived'),
    generationFinished: forward('generationFinished'),
    subscriptionOpened: forward('subscriptionOpened'),
    subscriptionClosed: forward('subscriptionClosed'),
  };
}
