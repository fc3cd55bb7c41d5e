/** The JSON body of `POST {baseURL}/chat/completions` (`docs/protocols.md` §2) for a gateway chat request. */
import type { ChatRequest } from '../provider.js';

/**
 * The request body, as JSON text: `model`, `messages` (already in OpenAI's `{role, content}`
 * shape), `stream: true` and `stream_options.include_usage: true` (so the last chunk carries the
 * token counts), then whichever of `temperature`, `top_p`, `max_tokens`, `stop` (when non-empty)
 * and `seed` the request sets.
 */
export function buildOpenAIChatBody(request: ChatRequest): string {
  const body: Record<string, unknown> = {
    model: request.model,
    messages: request.messages,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.topP !== undefined) body.top_p = request.topP;
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  if (request.stop !== undefined && request.stop.length > 0) body.stop = request.stop;
  if (request.seed !== undefined) body.seed = request.seed;
  return JSON.stringify(body);
}
