/** The `data` list of a Gradio call (`docs/protocols.md` §3) from a space's configured `inputs`. */

/** The values the `{placeholder}` items of a space's `inputs` stand for. */
export interface SpaceInputValues {
  prompt: string;
  negativePrompt: string;
  /** The seed asked for, or 0 when none was. */
  seed: number;
  /** True when no seed was asked for (the space picks one). */
  randomizeSeed: boolean;
  /** Pixels, already rounded down to a multiple of 8 and at least 32. */
  width: number;
  height: number;
  /** Inference steps. */
  steps: number;
}

/**
 * The `data` list of `POST /call/{endpoint}`: each string item of `inputs` that is exactly one
 * placeholder (`"{prompt}"`, `"{negativePrompt}"`, `"{seed}"`, `"{randomizeSeed}"`, `"{width}"`,
 * `"{height}"`, `"{steps}"`) becomes its value, keeping the value's type (`"{width}"` → `1024`);
 * every other item (numbers, other strings, nested values) passes unchanged.
 */
export function buildSpaceData(inputs: readonly unknown[], values: SpaceInputValues): unknown[] {
  return inputs.map((item) => {
    if (typeof item !== 'string') return item;
    const match = /^\{([A-Za-z]+)\}$/.exec(item);
    const key = match?.[1];
    return key !== undefined && Object.hasOwn(values, key) ? values[key as keyof SpaceInputValues] : item;
  });
}
