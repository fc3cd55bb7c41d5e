/**
 * The wire shapes of Gradio's "call" API (`docs/protocols.md` §3), as zod schemas of the fields
 * the provider reads (extra fields pass): step 1's `{"event_id"}`, and the `complete` event's
 * output list holding the image as a Gradio file object (or, on older spaces, a bare URL or path).
 */
import { z } from 'zod';

/** Step 1's answer: `{"event_id":"…"}`; other fields pass. */
export const gradioCallStartedSchema = z.looseObject({ event_id: z.string().min(1) });

/** A Gradio `FileData` object; `url` may be missing (then `path` is served under `/gradio_api/file=`). */
const fileDataSchema = z
  .looseObject({
    path: z.string().nullish(),
    url: z.string().nullish(),
    size: z.number().nullish(),
    orig_name: z.string().nullish(),
    mime_type: z.string().nullish(),
    is_stream: z.boolean().nullish(),
    meta: z.looseObject({ _type: z.string().optional() }).nullish(),
  })
  .refine((file) => Boolean(file.url) || Boolean(file.path), { message: 'a file object needs a url or a path' });

/** The image output: a `FileData` object, or (older spaces) a bare URL or path string. */
export const gradioImageOutputSchema = z.union([fileDataSchema, z.string().min(1)]);

/** The `complete` data: the output list. */
export const gradioOutputListSchema = z.array(z.unknown());

/** `JSON.parse`, or `undefined` for text that is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
