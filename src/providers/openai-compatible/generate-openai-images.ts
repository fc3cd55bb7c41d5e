/**
 * Image generation on an OpenAI-compatible upstream: `POST {baseURL}/images/generations`
 * (`docs/protocols.md` §2), answered as one JSON reply once the images exist, yielded as
 * {@link ImageStreamPart}s.
 */
import { BodyTooLargeError, readBoundedBytes } from '../http-errors.js';
import type { ImageRequest, ImageStreamPart, StreamOptions } from '../provider.js';
import { buildOpenAIImageBody } from './build-openai-image-body.js';
import { convertOpenAIImageReply } from './convert-openai-image-reply.js';
import type { OpenAICompatibleEndpoints } from './openai-compatible-endpoints.js';
import { startOpenAICompatibleExchange, type OpenAICompatibleExchangeSettings } from './openai-compatible-exchange.js';

/** Largest `/images/generations` reply read (four base64 PNGs fit easily), bytes. */
const IMAGE_REPLY_LIMIT_BYTES = 64 * 1024 * 1024;

/** What {@link generateOpenAIImages} needs of its upstream. */
export interface OpenAIImageSettings {
  exchange: OpenAICompatibleExchangeSettings;
  endpoints: OpenAICompatibleEndpoints;
  /** Time allowed until the upstream answers, ms: image endpoints answer only once the image exists. */
  timeoutMs: number;
}

/**
 * Generates images: sends the body of {@link buildOpenAIImageBody} with the request's key (else
 * the upstream's), reads the JSON reply (at most 64 MiB, under the idle timeout) and yields one
 * `image` part per entry ({@link convertOpenAIImageReply}), in reply order, then one `finish` part.
 *
 * @throws ProviderError as the exchange maps statuses, timeouts and unreachable upstreams
 *   ({@link startOpenAICompatibleExchange}) and `UPSTREAM_CONNECTION_LOST` when the body breaks;
 *   `UPSTREAM_BAD_RESPONSE` for a reply that is too large; the errors of {@link convertOpenAIImageReply}.
 *   When the caller's abort (`options.abort`, else `options.signal`) fires, the request is aborted
 *   (its connection closes) and the iterator throws its `reason`.
 */
export async function* generateOpenAIImages(
  settings: OpenAIImageSettings,
  request: ImageRequest,
  options: StreamOptions,
): AsyncGenerator<ImageStreamPart> {
  const { providerId, errors } = settings.exchange;
  const exchange = startOpenAICompatibleExchange(settings.exchange, options.abort ?? options.signal);

  try {
    const response = await exchange.send(
      settings.endpoints.imagesURL,
      {
        method: 'POST',
        headers: { ...settings.endpoints.jsonPostHeadersFor('application/json', request.apiKey), ...options.traceHeaders },
        body: buildOpenAIImageBody(request),
      },
      { timeoutMs: settings.timeoutMs, expected: 'image' },
    );

    // The reply is read in one go; the idle timer fires when no chunk arrives for idleTimeoutMs.
    const bytes = await exchange.read(
      (progress) =>
        readBoundedBytes(response.body, IMAGE_REPLY_LIMIT_BYTES, progress).catch((error: unknown) => {
          if (error instanceof BodyTooLargeError) {
            throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image reply larger than ${IMAGE_REPLY_LIMIT_BYTES} bytes`);
          }
          throw error;
        }),
      'while reading the image reply',
    );
    exchange.finish();
    exchange.rethrowIfCallerAborted();

    const images = convertOpenAIImageReply(new TextDecoder().decode(bytes), response.status, {
      providerId,
      baseURL: settings.endpoints.baseURL,
      errors,
    });
    for (const image of images) yield { type: 'image', image };
    yield { type: 'finish' };
  } finally {
    // Early exit (caller abort, consumer stopped, error): close the upstream connection.
    exchange.close('request closed by the gateway');
  }
}
