/**
 * The kinds of values settings take, as zod schemas. Each accepts what the environment gives (a
 * string) and what a `CONFIG_FILE` gives (any JSON value), and words its issues with the setting's
 * name, e.g. "PORT must be a number". Functions of `name` are passed as a setting's `schema` (see
 * `setting.ts`), which calls them with the setting's name.
 */
import { z } from 'zod';

/** Log levels `LOG_LEVEL` accepts, from most to least verbose, plus `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `a`, `a or b`, `a, b or c`. */
export function alternatives(values: readonly string[]): string {
  return values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

/** One of `values`, else the issue "`{name}` must be a, b or c". */
export function oneOf<const Values extends readonly [string, ...string[]]>(values: Values) {
  return (name: string) => z.enum(values, { error: `${name} must be ${alternatives(values)}` });
}

/** A number (a numeric string is converted), else the issue "`{name}` must be a number". */
export const numberValue = (name: string) => z.coerce.number({ error: `${name} must be a number` });

/** A whole number, 0 or more (a count of 0 turns the limit it sets off). */
export const wholeNumber = (name: string) => numberValue(name).int(`${name} must be a whole number`).min(0, `${name} must be 0 or more`);

/** A whole number above 0. */
export const positiveInteger = (name: string) =>
  numberValue(name).int(`${name} must be a whole number`).positive(`${name} must be greater than 0`);

/** `url` without the slashes it ends with (`https://host/v1/` → `https://host/v1`). */
export function withoutTrailingSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}

/** An `http:` or `https:` URL, trailing slashes removed. */
export const httpUrl = (name: string) =>
  z.url({ error: `${name} must be an http(s) URL`, protocol: /^https?$/ }).transform(withoutTrailingSlashes);

/** Any text of one character or more. */
export const text = () => z.string().min(1);

/** `true`, `false`, `1` or `0` (or a JSON boolean) as a boolean. */
export const booleanString = () =>
  z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((value) => value === true || value === 'true' || value === '1');

/** `a, b ,c` → `['a', 'b', 'c']`; a JSON array of strings in a config file works too. */
export const commaList = () =>
  z.union([z.array(z.string().min(1)), z.string().transform((list) => list.split(',').map((item) => item.trim()).filter(Boolean))]);

/**
 * A JSON value given as a string (environment) or already parsed (config file), then checked by
 * `shape`; text that is not JSON is the issue "`{name}` must be `{what}`".
 */
export function jsonValue<Shape extends z.ZodType>(what: string, shape: (name: string) => Shape) {
  return (name: string) =>
    z
      .unknown()
      .transform((value, context) => {
        if (typeof value !== 'string') return value;
        try {
          return JSON.parse(value) as unknown;
        } catch {
          context.addIssue({ code: 'custom', message: `${name} must be ${what}` });
          return z.NEVER;
        }
      })
      .pipe(shape(name));
}

/** A JSON array of `item`s, given as a string (environment) or as JSON (config file). */
export function jsonArray<Item extends z.ZodType>(item: Item) {
  return jsonValue('a JSON array', (name) => z.array(item, { error: `${name} must be a JSON array` }));
}
