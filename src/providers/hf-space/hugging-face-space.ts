/**
 * The settings of one Gradio image Space spoken to over Gradio's "call" API
 * (`docs/protocols.md` §3), as the `hf-space` provider takes them; each space is one image model.
 * The gateway's configuration holds a list of these; any object of this shape will do.
 */

/** One Gradio image Space: where it is, what to send it, and where its answer holds the image. */
export interface HuggingFaceSpace {
  /** Model id clients request, e.g. `flux-1-schnell`. */
  model: string;
  label?: string;
  /** The space's own host, e.g. `https://black-forest-labs-flux-1-schnell.hf.space`. */
  baseURL: string;
  /** Gradio endpoint name: `POST {baseURL}/call/{endpoint}`, e.g. `infer`. */
  endpoint: string;
  /**
   * The `data` list sent. String items that are exactly one placeholder are replaced by the
   * value (keeping its type): `{prompt}`, `{negativePrompt}`, `{seed}` (0 when none was asked),
   * `{randomizeSeed}` (true when no seed was asked), `{width}`, `{height}`, `{steps}`; other items
   * pass as they are (see `buildSpaceData`).
   */
  inputs: unknown[];
  /** Index of the Gradio file object (`{url, path, mime_type, …}`) in the `complete` data list. */
  imageIndex: number;
  /** Index of the seed the space used in the `complete` data list, when it reports one. */
  seedIndex?: number;
  /** Pixels used when a request gives neither size nor aspect ratio. */
  defaultWidth: number;
  defaultHeight: number;
  /** Inference steps used when a request gives none. */
  defaultSteps: number;
}
