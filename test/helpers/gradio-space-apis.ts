/**
 * The endpoints of the Gradio Spaces the built-in `hf-space` presets call, as each Space's "Use via
 * API" page lists them: the endpoint name and its parameters in order, with the JSON type each
 * takes. Written from the public sources of `docs/protocols.md` §3 (the Spaces' `app.py`, gpt4free's
 * providers, the `gradio_client` calls the pages suggest), apart from `src/config/space-settings.ts`
 * on purpose: the fake Gradio Space checks every call against these, so a preset that sends the
 * wrong shape fails its test instead of being compared with itself.
 */

/** One parameter of a Gradio endpoint: its name on the "Use via API" page and the JSON type it takes. */
export interface GradioParameter {
  name: string;
  type: 'string' | 'number' | 'boolean';
}

/** One endpoint of a Space: `POST /call/{name}` with `data` in the order of `parameters`; it answers `[image, seed]`. */
export interface GradioEndpointSignature {
  name: string;
  parameters: GradioParameter[];
}

const prompt: GradioParameter = { name: 'prompt', type: 'string' };
const negativePrompt: GradioParameter = { name: 'negative_prompt', type: 'string' };
const seed: GradioParameter = { name: 'seed', type: 'number' };
const randomizeSeed: GradioParameter = { name: 'randomize_seed', type: 'boolean' };
const width: GradioParameter = { name: 'width', type: 'number' };
const height: GradioParameter = { name: 'height', type: 'number' };
const guidanceScale: GradioParameter = { name: 'guidance_scale', type: 'number' };
const steps: GradioParameter = { name: 'num_inference_steps', type: 'number' };

/** `black-forest-labs/FLUX.1-schnell`: `/infer(prompt, seed, randomize_seed, width, height, num_inference_steps)`. */
export const FLUX_SCHNELL_INFER: GradioEndpointSignature = { name: 'infer', parameters: [prompt, seed, randomizeSeed, width, height, steps] };

/** `black-forest-labs/FLUX.1-dev`: `/infer(prompt, seed, randomize_seed, width, height, guidance_scale, num_inference_steps)`. */
export const FLUX_DEV_INFER: GradioEndpointSignature = {
  name: 'infer',
  parameters: [prompt, seed, randomizeSeed, width, height, guidanceScale, steps],
};

/**
 * `stabilityai/stable-diffusion-3.5-large`: `/infer(prompt, negative_prompt, seed, randomize_seed,
 * width, height, guidance_scale, num_inference_steps)`.
 */
export const SD_3_5_LARGE_INFER: GradioEndpointSignature = {
  name: 'infer',
  parameters: [prompt, negativePrompt, seed, randomizeSeed, width, height, guidanceScale, steps],
};

/**
 * Why `data` does not fit `signature`, or undefined when it does: the number of items (worded like
 * Gradio's own refusal, "didn't receive enough input values (needed: 7, got: 6)"), then each item's
 * JSON type. Stricter than Gradio, which would coerce `"3.5"` to a number: a preset should send
 * what the page shows.
 */
export function describeDataMismatch(signature: GradioEndpointSignature, data: readonly unknown[]): string | undefined {
  const needed = signature.parameters.length;
  if (data.length !== needed) {
    const amount = data.length < needed ? 'enough' : 'so many';
    return `An event handler (${signature.name}) didn't receive ${amount} input values (needed: ${needed}, got: ${data.length}).`;
  }
  for (const [index, parameter] of signature.parameters.entries()) {
    const item = data[index];
    if (typeof item !== parameter.type) {
      return `Input ${index} (${parameter.name}) of ${signature.name} must be a ${parameter.type}, got ${JSON.stringify(item)}.`;
    }
  }
  return undefined;
}
