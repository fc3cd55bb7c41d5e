/**
 * Settings of the `hf-space` provider's Gradio Spaces (`docs/protocols.md` §3): the provider's
 * switch, the built-in Spaces (FLUX.1-schnell, and FLUX.1-dev and Stable Diffusion 3.5 Large when
 * turned on) and the Spaces of `HF_SPACES`. Part of the settings
 * tree through `provider-settings.ts`; see `setting.ts` for how a setting is defined.
 */
import { z } from 'zod';
import { ConfigError, derived, setting, type SourceValues } from './setting.js';
import { booleanString, httpUrl, jsonArray } from './value-schemas.js';

/** One entry of `HF_SPACES`: a Gradio image Space spoken to over Gradio's "call" API (`docs/protocols.md` §3). */
const spaceSchema = z.object({
  model: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'model must be letters, digits, ".", "-" or "_"')
    .describe('model id clients request, e.g. `sd-3.5-large`: letters, digits, `.`, `-` and `_`'),
  label: z.string().optional().describe('name shown for the model (default: its `model`)'),
  baseURL: httpUrl('baseURL').describe("the space's own host, e.g. `https://black-forest-labs-flux-1-schnell.hf.space`"),
  endpoint: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'endpoint must be a Gradio endpoint name like "infer"')
    .describe('Gradio endpoint name: `POST {baseURL}/call/{endpoint}`, e.g. `infer`'),
  inputs: z
    .array(z.unknown())
    .min(1, 'inputs must list the data items')
    .describe(
      'the `data` list sent: items that are exactly `{prompt}`, `{negativePrompt}`, `{seed}` (0 when the request gives none), ' +
        "`{randomizeSeed}` (true when it gives none), `{width}`, `{height}` or `{steps}` are replaced by the request's values " +
        '(keeping their type); other items are sent as they are',
    ),
  imageIndex: z.number().int().min(0).default(0).describe('where the image (a Gradio file object `{url, path, mime_type, …}`) is in the result list'),
  seedIndex: z.number().int().min(0).optional().describe('where the seed the space used is in the result list, when it reports one'),
  defaultWidth: z.number().int().min(32).max(2048).default(1024).describe('width in pixels when a request gives neither size nor aspect ratio (32 to 2048)'),
  defaultHeight: z.number().int().min(32).max(2048).default(1024).describe('height in pixels when a request gives neither size nor aspect ratio (32 to 2048)'),
  defaultSteps: z.number().int().min(1).max(100).default(4).describe('inference steps when a request gives none (1 to 100)'),
});

/** One Gradio image Space, one image model of the `hf-space` provider (`docs/protocols.md` §3): an entry of `HF_SPACES`, defaults filled in. */
export type HuggingFaceSpaceConfig = z.output<typeof spaceSchema>;

/** A built-in Space: an `HF_SPACES` entry but for where the Space is, which a setting says. */
type SpacePreset = Omit<HuggingFaceSpaceConfig, 'baseURL'>;

/**
 * The Space `black-forest-labs/FLUX.1-schnell`: `infer(prompt, seed, randomize_seed, width, height,
 * num_inference_steps)` answers `(image, seed)` (`docs/protocols.md` §3).
 */
const FLUX_SCHNELL: SpacePreset = {
  model: 'flux-1-schnell',
  label: 'FLUX.1 [schnell] (black-forest-labs/FLUX.1-schnell)',
  endpoint: 'infer',
  inputs: ['{prompt}', '{seed}', '{randomizeSeed}', '{width}', '{height}', '{steps}'],
  imageIndex: 0,
  seedIndex: 1,
  defaultWidth: 1024,
  defaultHeight: 1024,
  defaultSteps: 4,
};

/**
 * The Space `black-forest-labs/FLUX.1-dev`: `infer(prompt, seed, randomize_seed, width, height,
 * guidance_scale, num_inference_steps)` answers `(image, seed)`; guidance 3.5 and 28 steps are the
 * Space's own defaults (`docs/protocols.md` §3).
 */
const FLUX_DEV: SpacePreset = {
  model: 'flux-1-dev',
  label: 'FLUX.1 [dev] (black-forest-labs/FLUX.1-dev)',
  endpoint: 'infer',
  inputs: ['{prompt}', '{seed}', '{randomizeSeed}', '{width}', '{height}', 3.5, '{steps}'],
  imageIndex: 0,
  seedIndex: 1,
  defaultWidth: 1024,
  defaultHeight: 1024,
  defaultSteps: 28,
};

/**
 * The Space `stabilityai/stable-diffusion-3.5-large`: `infer(prompt, negative_prompt, seed,
 * randomize_seed, width, height, guidance_scale, num_inference_steps)` answers `(image, seed)`;
 * guidance 4.5 and 40 steps are the Space's own defaults (`docs/protocols.md` §3).
 */
const SD_3_5_LARGE: SpacePreset = {
  model: 'sd-3.5-large',
  label: 'Stable Diffusion 3.5 Large (stabilityai/stable-diffusion-3.5-large)',
  endpoint: 'infer',
  inputs: ['{prompt}', '{negativePrompt}', '{seed}', '{randomizeSeed}', '{width}', '{height}', 4.5, '{steps}'],
  imageIndex: 0,
  seedIndex: 1,
  defaultWidth: 1024,
  defaultHeight: 1024,
  defaultSteps: 40,
};

/** Why the presets on ZeroGPU are off until turned on; shown under the reference table. */
const ZERO_GPU_PRESETS = {
  title: 'Space presets that need a token',
  text: [
    '`flux-1-dev` (`HF_FLUX_DEV_ENABLED`) and `sd-3.5-large` (`HF_SD_3_5_LARGE_ENABLED`) are built-in Spaces like ' +
      '`flux-1-schnell`, off by default. Both Spaces run on ZeroGPU, shared GPUs that Hugging Face lends each caller for a ' +
      'small daily quota; an anonymous caller has the smallest one, and one image of these models (28 and 40 steps) takes ' +
      'much more GPU time than one of FLUX.1-schnell (4 steps). Turn them on together with `HF_TOKEN`, sent as ' +
      '`Authorization: Bearer …`; once the quota is spent the Space answers with an error ("You have exceeded your GPU ' +
      'quota …"), which the generation reports as `UPSTREAM_ERROR`. A copy of the Space under your own account ("Duplicate ' +
      'this Space", on hardware you pay for) is not bound by that quota: point `HF_FLUX_DEV_URL` / `HF_SD_3_5_LARGE_URL` at it.',
  ].join('\n'),
};

const spaceSources = {
  enabled: setting({
    name: 'HF_SPACES_ENABLED',
    schema: booleanString,
    default: true,
    description: 'the `hf-space` provider (FLUX.1-schnell, the presets turned on below, and `HF_SPACES`)',
  }),
  fluxSchnellURL: setting({
    name: 'HF_FLUX_SCHNELL_URL',
    schema: httpUrl,
    default: 'https://black-forest-labs-flux-1-schnell.hf.space',
    description: 'where the FLUX.1-schnell Space is',
  }),
  fluxDevEnabled: setting({
    name: 'HF_FLUX_DEV_ENABLED',
    schema: booleanString,
    default: false,
    description: 'the built-in FLUX.1-dev Space (`flux-1-dev`); off by default, it needs `HF_TOKEN` (see below)',
    details: ZERO_GPU_PRESETS,
  }),
  fluxDevURL: setting({
    name: 'HF_FLUX_DEV_URL',
    schema: httpUrl,
    default: 'https://black-forest-labs-flux-1-dev.hf.space',
    description: 'where the FLUX.1-dev Space is',
  }),
  stableDiffusionLargeEnabled: setting({
    name: 'HF_SD_3_5_LARGE_ENABLED',
    schema: booleanString,
    default: false,
    description: 'the built-in Stable Diffusion 3.5 Large Space (`sd-3.5-large`); off by default, it needs `HF_TOKEN` (see below)',
  }),
  stableDiffusionLargeURL: setting({
    name: 'HF_SD_3_5_LARGE_URL',
    schema: httpUrl,
    default: 'https://stabilityai-stable-diffusion-3-5-large.hf.space',
    description: 'where the Stable Diffusion 3.5 Large Space is',
  }),
  configured: setting({
    name: 'HF_SPACES',
    schema: jsonArray(spaceSchema),
    default: [],
    description: 'JSON array of more Gradio Spaces, see below',
    fields: spaceSchema,
    details: {
      title: 'More Gradio Spaces',
      text: [
        'Each entry of `HF_SPACES` is one image model of `hf-space`, spoken to over Gradio\'s call API ' +
          '(`POST {baseURL}/call/{endpoint}`, then the event stream of the result). A space\'s "Use via API" page lists its ' +
          'endpoint names and the order of its inputs. This entry is a copy of the FLUX.1-dev Space duplicated under your own ' +
          'account (check its page before relying on the inputs):',
        '',
        '```sh',
        "export HF_SPACES='[{",
        '  "model": "my-flux-dev", "baseURL": "https://your-name-flux-1-dev.hf.space", "endpoint": "infer",',
        '  "inputs": ["{prompt}", "{seed}", "{randomizeSeed}", "{width}", "{height}", 3.5, "{steps}"],',
        '  "imageIndex": 0, "seedIndex": 1, "defaultWidth": 1024, "defaultHeight": 1024, "defaultSteps": 28',
        "}]'",
        '```',
      ].join('\n'),
    },
  }),
};

/**
 * The spaces of `hf-space`: FLUX.1-schnell, the presets turned on (FLUX.1-dev, Stable Diffusion 3.5
 * Large), then `HF_SPACES`; none when the provider is off.
 * @throws ConfigError when a model id is used twice (an `HF_SPACES` entry may not take a preset's id
 *   while that preset is on).
 */
function resolveSpaces(values: SourceValues<typeof spaceSources>): HuggingFaceSpaceConfig[] {
  if (!values.enabled) return [];
  const spaces: HuggingFaceSpaceConfig[] = [{ ...FLUX_SCHNELL, baseURL: values.fluxSchnellURL }];
  if (values.fluxDevEnabled) spaces.push({ ...FLUX_DEV, baseURL: values.fluxDevURL });
  if (values.stableDiffusionLargeEnabled) spaces.push({ ...SD_3_5_LARGE, baseURL: values.stableDiffusionLargeURL });
  for (const space of values.configured) {
    if (spaces.some((existing) => existing.model === space.model)) {
      throw new ConfigError(`Invalid configuration: ${spaceSources.configured.name}: model "${space.model}" is used twice`);
    }
    spaces.push({ ...space, ...(space.label === undefined && { label: space.model }) });
  }
  return spaces;
}

/**
 * The spaces of `hf-space` (`Config.huggingFaceSpaces`): FLUX.1-schnell, the presets turned on, then
 * `HF_SPACES`; empty when the provider is off.
 */
export const huggingFaceSpaces = derived(spaceSources, resolveSpaces);
