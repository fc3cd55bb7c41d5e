/**
 * One whole Gradio call (`docs/protocols.md` §3): step 1 `POST {baseURL}/call/{endpoint}` with
 * `{"data":[…]}` answers `{"event_id"}`; step 2 reads the result stream, again when it ends without
 * `complete` (a queue hiccup), a bounded number of times.
 */
import { shortenMessage } from '../http-errors.js';
import type { ImageStreamPart } from '../provider.js';
import { gradioCallStartedSchema, parseJson } from './gradio-api.js';
import { gradioHeadersFor } from './gradio-endpoints.js';
import { readGradioResult, type GradioResultContext } from './read-gradio-result.js';

/** What {@link runGradioCall} needs: what reading a result needs, the request body and the read limit. */
export interface GradioCallContext extends GradioResultContext {
  /** The JSON body of step 1, `{"data":[…]}`. */
  body: string;
  /** Reads of a result stream that ends without `complete` before giving up, at least 1. */
  maxReads: number;
}

/** Step 1: `POST /call/{endpoint}` → the event id. */
async function startGradioCall(context: GradioCallContext): Promise<string> {
  const { exchange, errors, space } = context;
  const callURL = context.endpoints.callURL;
  const what = `POST ${callURL}`;
  const { response } = await exchange.send(callURL, {
    method: 'POST',
    headers: { ...gradioHeadersFor('application/json', context.token), 'Content-Type': 'application/json' },
    body: context.body,
  });
  if (!response.ok) throw await exchange.statusError(response, what);
  const text = await exchange.readSmallBody(response, 'the event id');
  const parsed = gradioCallStartedSchema.safeParse(parseJson(text));
  if (!parsed.success) {
    throw errors.error('UPSTREAM_BAD_RESPONSE', `space ${space.model} answered ${what} without an event_id: ${shortenMessage(text.trim()) || '(empty body)'}`, {
      statusCode: response.status,
    });
  }
  return parsed.data.event_id;
}

/**
 * Runs one call and emits its parts: `progress` parts as they come, then its `image` part.
 * @throws the run's abort outcome; the ProviderErrors of the exchange and of {@link readGradioResult};
 *   `UPSTREAM_BAD_RESPONSE` when step 1's answer holds no `event_id`; `UPSTREAM_CONNECTION_LOST` when
 *   every one of `maxReads` reads ended without `complete`.
 */
export async function runGradioCall(context: GradioCallContext, emit: (part: ImageStreamPart) => void): Promise<void> {
  const eventId = await startGradioCall(context);
  let lastWhy = '';
  for (let read = 1; read <= context.maxReads; read++) {
    context.exchange.rethrowIfRunAborted();
    const outcome = await readGradioResult(context, eventId, emit);
    if (outcome.kind === 'image') {
      emit({ type: 'image', image: outcome.image });
      return;
    }
    lastWhy = outcome.why;
  }
  throw context.errors.error(
    'UPSTREAM_CONNECTION_LOST',
    `space ${context.space.model}: stream ended without a result after ${context.maxReads} reads (${lastWhy})`,
  );
}
