/**
 * Settings of the `hf-space` provider's Gradio Spaces (`docs/protocols.md` §3): the provider's
 * switch, the built-in FLUX.1-schnell Space and the Spaces of `HF_SPACES`. Part of the settings
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

const spaceSources = {
  enabled: setting({ name: 'HF_SPACES_ENABLED', schema: booleanString, default: true, description: 'the `hf-space` provider (FLUX.1-schnell plus `HF_SPACES`)' }),
  fluxSchnellURL: setting({
    name: 'HF_FLUX_SCHNELL_URL',
    schema: httpUrl,
    default: 'https://black-forest-labs-flux-1-schnell.hf.space',
    description: 'where the FLUX.1-schnell Space is',
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
          "endpoint names and the order of its inputs; this entry has the shape of Stable Diffusion 3.5's space (check the page " +
          'before relying on it):',
        '',
        '```sh',
        "export HF_SPACES='[{",
        '  "model": "sd-3.5-large", "baseURL": "https://stabilityai-stable-diffusion-3-5-large.hf.space", "endpoint": "infer",',
        '  "inputs": ["{prompt}", "{negativePrompt}", "{seed}", "{randomizeSeed}", "{width}", "{height}", 4.5, "{steps}"],',
        '  "imageIndex": 0, "seedIndex": 1, "defaultWidth": 1024, "defaultHeight": 1024, "defaultSteps": 40',
        "}]'",
        '```',
      ].join('\n'),
    },
  }),
};

/**
 * The spaces of `hf-space`: FLUX.1-schnell, then `HF_SPACES`; none when the provider is off.
 * @throws ConfigError when a model id is used twice.
 */
function resolveSpaces(values: SourceValues<typeof spaceSources>): HuggingFaceSpaceConfig[] {
  if (!values.enabled) return [];
  const spaces: HuggingFaceSpaceConfig[] = [
    {
      model: 'flux-1-schnell',
      label: 'FLUX.1 [schnell] (black-forest-labs/FLUX.1-schnell)',
      baseURL: values.fluxSchnellURL,
      endpoint: 'infer',
      inputs: ['{prompt}', '{seed}', '{randomizeSeed}', '{width}', '{height}', '{steps}'],
      imageIndex: 0,
      seedIndex: 1,
      defaultWidth: 1024,
      defaultHeight: 1024,
      defaultSteps: 4,
    },
  ];
  for (const space of values.configured) {
    if (spaces.some((existing) => existing.model === space.model)) {
      throw new ConfigError(`Invalid configuration: ${spaceSources.configured.name}: model "${space.model}" is used twice`);
    }
    spaces.push({ ...space, ...(space.label === undefined && { label: space.model }) });
  }
  return spaces;
}

/** The spaces of `hf-space` (`Config.huggingFaceSpaces`): FLUX.1-schnell, then `HF_SPACES`; empty when the provider is off. */
export const huggingFaceSpaces = derived(spaceSources, resolveSpaces);
