/**
 * The `complete` event of a Gradio call (`docs/protocols.md` §3) — its data is the output list,
 * holding the image as a Gradio file object or a bare URL or path — as the gateway's {@link ProviderImage}.
 */
import { shortenMessage, type ProviderErrors } from '../http-errors.js';
import type { ProviderImage } from '../provider.js';
import { gradioImageOutputSchema, gradioOutputListSchema, parseJson } from './gradio-api.js';
import type { GradioEndpoints } from './gradio-endpoints.js';
import type { HuggingFaceSpace } from './hugging-face-space.js';

/** What {@link convertGradioOutput} needs: the space, its endpoints, the size sent and the provider's errors. */
export interface GradioOutputContext {
  space: Pick<HuggingFaceSpace, 'model' | 'imageIndex' | 'seedIndex'>;
  endpoints: GradioEndpoints;
  /** The size sent, pixels. */
  width: number;
  height: number;
  errors: ProviderErrors;
}

/**
 * The image of a `complete` event's data (JSON text): `url` on the space (a file object's `url`
 * resolved against the space, else its `path` under `/gradio_api/file=`; a bare string is a URL when
 * it starts with `http(s)://`, else a path), `mimeType` from the file object's `mime_type`,
 * `width`/`height` as sent, and `seed` from the output's `seedIndex` when that is a number.
 * @throws ProviderError `UPSTREAM_BAD_RESPONSE` when the data is not a list or holds no image at `imageIndex`.
 */
export function convertGradioOutput(dataText: string, context: GradioOutputContext): ProviderImage {
  const { space, endpoints, errors } = context;
  const output = gradioOutputListSchema.safeParse(parseJson(dataText));
  if (!output.success) {
    throw errors.error('UPSTREAM_BAD_RESPONSE', `space ${space.model} sent a complete event whose data is not a list: ${shortenMessage(dataText)}`);
  }
  const file = gradioImageOutputSchema.safeParse(output.data[space.imageIndex]);
  if (!file.success) {
    const issue = file.error.issues[0];
    const where = issue ? `${issue.path.join('.') || 'file'}: ${issue.message}` : 'unexpected shape';
    throw errors.error('UPSTREAM_BAD_RESPONSE', `space ${space.model} sent no image file object at output index ${space.imageIndex} (${where})`);
  }
  let url: string;
  let mimeType: string | undefined;
  const fileData = file.data;
  if (typeof fileData === 'string') {
    url = /^https?:\/\//i.test(fileData) ? fileData : endpoints.fileURLFromPath(fileData);
  } else {
    mimeType = fileData.mime_type ?? undefined;
    url = fileData.url ? endpoints.fileURLFromURL(fileData.url) : endpoints.fileURLFromPath(`${fileData.path}`);
  }
  const seed = space.seedIndex === undefined ? undefined : output.data[space.seedIndex];
  return {
    url,
    ...(mimeType !== undefined && { mimeType }),
    width: context.width,
    height: context.height,
    ...(typeof seed === 'number' && Number.isFinite(seed) && { seed }),
  };
}
