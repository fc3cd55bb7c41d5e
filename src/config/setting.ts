/**
 * How settings are defined, read and documented. A setting is one environment variable (and the
 * `CONFIG_FILE` key of the same name), defined once with its schema, default and description. A
 * settings tree places settings, and values derived from several of them, at the properties of the
 * configuration object; the object's type ({@link ConfigurationOf}) follows from the tree, and the
 * configuration reference (`docs/configuration.md`) is printed from the same definitions.
 */
import { z } from 'zod';

/** Thrown for invalid configuration; `message` is one line naming the bad setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment variables by name, as in `process.env`. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** What the configuration reference says about a setting. */
export interface SettingDocumentation {
  /**
   * The environment variable and `CONFIG_FILE` key, e.g. `PORT`. A family of variables names its
   * variable part in braces: `WORKER_CONCURRENCY_{PROVIDER}`.
   */
  readonly name: string;
  /** One line of Markdown for the reference table (no `|`, no line break). */
  readonly description: string;
  /** The default, written as in the environment or a config file, or a function computing it when loaded; undefined = none. */
  readonly default?: unknown;
  /** Markdown for the reference's default column, instead of the default's value (needed for a computed default). */
  readonly documentedDefault?: string;
  /** A section of its own below the reference table: a title and Markdown paragraphs (examples, notes). */
  readonly details?: { readonly title: string; readonly text: string };
  /** For a JSON array setting: the object schema of one item, whose `.describe()`d fields the reference lists. */
  readonly fields?: z.ZodObject;
}

/** One variable: its schema checks and converts the raw value, default applied (absent = undefined when there is none). */
export interface Setting<Output> extends SettingDocumentation {
  readonly kind: 'setting';
  readonly schema: z.ZodType<Output>;
}

/** Variables sharing a name pattern (`WORKER_CONCURRENCY_{PROVIDER}`), read together into one value. */
export interface SettingFamily<Output> extends SettingDocumentation {
  readonly kind: 'family';
  /** The variable part of `variable` (`LLAMA_CPP` of `WORKER_CONCURRENCY_LLAMA_CPP`); undefined when it is not of the family. */
  variablePart(variable: string): string | undefined;
  /** The schema of one variable of the family, its issues worded with that variable's name. */
  schemaFor(variable: string): z.ZodType;
  /** The value from the converted values of the variables present, by variable part. */
  collect(values: Readonly<Record<string, unknown>>): Output;
}

/** Settings a derived value is computed from, by the names its `build` function gives them. */
type Sources = Readonly<Record<string, Setting<any>>>;

/** The converted values of `From`'s settings, by the same names. */
export type SourceValues<From extends Sources> = { [Key in keyof From]: From[Key] extends Setting<infer Output> ? Output : never };

/** A configuration property computed from several settings (and checks across them). */
export interface Derived<Output, From extends Sources = Sources> {
  readonly kind: 'derived';
  readonly from: From;
  /** @throws ConfigError when the settings do not fit together. */
  build(values: SourceValues<From>, environment: Environment): Output;
}

type Leaf = Setting<any> | SettingFamily<any> | Derived<any, any>;

/** Properties of the configuration object: a setting, a derived value, or a nested object of the same. */
export interface SettingsTree {
  readonly [property: string]: Leaf | SettingsTree;
}

type ValueOf<Node> =
  Node extends Derived<infer Output, any>
    ? Output
    : Node extends SettingFamily<infer Output>
      ? Output
      : Node extends Setting<infer Output>
        ? Output
        : Node extends SettingsTree
          ? ConfigurationOf<Node>
          : never;

type Simplify<Type> = { [Key in keyof Type]: Type[Key] } & {};

/** The configuration object a tree reads into: each property the value of its node, optional where that may be undefined. */
export type ConfigurationOf<Tree> = Simplify<
  { -readonly [Key in keyof Tree as undefined extends ValueOf<Tree[Key]> ? never : Key]: ValueOf<Tree[Key]> } & {
    -readonly [Key in keyof Tree as undefined extends ValueOf<Tree[Key]> ? Key : never]?: Exclude<ValueOf<Tree[Key]>, undefined>;
  }
>;

/** Fields of a setting definition; `schema` is called with the setting's name, which its issues quote. */
interface SettingDefinition<Schema extends z.ZodType> extends Omit<SettingDocumentation, 'default'> {
  readonly schema: (name: string) => Schema;
}

/**
 * Defines a setting. With a `default` (the value as it would be written, or a function computing
 * it when loaded), the default goes through the schema like a given value; without, an absent
 * setting reads as undefined (and its configuration property is optional).
 */
export function setting<Schema extends z.ZodType>(
  definition: SettingDefinition<Schema> & { readonly default: z.input<Schema> | (() => z.input<Schema>) },
): Setting<z.output<Schema>>;
export function setting<Schema extends z.ZodType>(definition: SettingDefinition<Schema> & { readonly default?: undefined }): Setting<z.output<Schema> | undefined>;
export function setting(definition: SettingDefinition<z.ZodType> & { readonly default?: unknown }): Setting<unknown> {
  const schema = definition.schema(definition.name);
  return {
    ...definition,
    kind: 'setting',
    schema: definition.default === undefined ? schema.optional() : schema.prefault(definition.default as never),
  };
}

/**
 * Defines a family of variables whose name has one part in braces (`WORKER_CONCURRENCY_{PROVIDER}`);
 * `collect` turns the values of those present, by variable part, into the configuration value.
 */
export function settingFamily<Schema extends z.ZodType, Output>(
  definition: SettingDefinition<Schema> & { collect(values: Readonly<Record<string, z.output<Schema>>>): Output },
): SettingFamily<Output> {
  const [prefix, suffix, ...rest] = definition.name.split(/\{[A-Z_]+\}/);
  if (prefix === undefined || suffix === undefined || rest.length > 0) throw new Error(`${definition.name}: a setting family names one part in braces`);
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${escape(prefix)}(.+)${escape(suffix)}$`);
  return {
    ...definition,
    kind: 'family',
    variablePart: (variable) => pattern.exec(variable)?.[1],
    schemaFor: (variable) => definition.schema(variable),
    collect: (values) => definition.collect(values as Readonly<Record<string, z.output<Schema>>>),
  };
}

/** Defines a configuration property computed by `build` from the settings of `from`. */
export function derived<From extends Sources, Output>(
  from: From,
  build: (values: SourceValues<From>, environment: Environment) => Output,
): Derived<Output, From> {
  return { kind: 'derived', from, build };
}

function isLeaf(node: Leaf | SettingsTree): node is Leaf {
  return typeof (node as { kind?: unknown }).kind === 'string';
}

/** The settings of `tree`, each once, in the order they first appear (a derived value's sources where it stands). */
export function settingsOf(tree: SettingsTree): (Setting<unknown> | SettingFamily<unknown>)[] {
  const found = new Set<Setting<unknown> | SettingFamily<unknown>>();
  const visit = (node: Leaf | SettingsTree): void => {
    if (!isLeaf(node)) Object.values(node).forEach(visit);
    else if (node.kind === 'derived') Object.values(node.from as Sources).forEach((source) => found.add(source));
    else found.add(node);
  };
  visit(tree);
  return [...found];
}

/** Formats a zod issue as `NAME[.path]: message (got value)`; values of secret-looking settings (keys, tokens, passwords, cookies) are never repeated. */
function describeIssue(issue: z.core.$ZodIssue, input: Readonly<Record<string, unknown>>): string {
  const path = issue.path.map(String);
  const name = path.join('.') || 'configuration';
  const top = path[0];
  const secret = top !== undefined && /KEY|TOKEN|SECRET|PASSWORD|COOKIE/i.test(top);
  const got = top !== undefined && !secret && path.length === 1 && input[top] !== undefined ? ` (got ${JSON.stringify(input[top])})` : '';
  return `${name}: ${issue.message}${got}`;
}

/**
 * Validates `input` against the settings of `tree` and builds the configuration object; a property
 * whose value is undefined is left out.
 * @param input raw values by variable name: strings, or JSON values from a config file.
 * @param environment the environment alone, for values read from variables that settings name (`apiKeyEnv`).
 * @throws ConfigError `Invalid configuration: NAME: message (got "value")` for the first invalid
 *   setting, or the error of a derived value whose settings do not fit together.
 */
export function readSettings<Tree extends SettingsTree>(tree: Tree, input: Readonly<Record<string, unknown>>, environment: Environment): ConfigurationOf<Tree> {
  const sources = settingsOf(tree);
  const shape: Record<string, z.ZodType> = {};
  for (const source of sources) if (source.kind === 'setting') shape[source.name] = source.schema;
  const familyVariables = new Map<SettingFamily<unknown>, [part: string, variable: string][]>();
  for (const source of sources) {
    if (source.kind !== 'family') continue;
    const variables: [string, string][] = [];
    for (const variable of Object.keys(input)) {
      const part = source.variablePart(variable);
      if (part === undefined || Object.hasOwn(shape, variable)) continue;
      variables.push([part, variable]);
      shape[variable] = source.schemaFor(variable);
    }
    familyVariables.set(source, variables);
  }
  const result = z.object(shape).safeParse(input);
  if (!result.success) throw new ConfigError(`Invalid configuration: ${describeIssue(result.error.issues[0]!, input)}`);
  const parsed = result.data as Record<string, unknown>;
  const values = new Map<unknown, unknown>();
  for (const source of sources) {
    if (source.kind === 'setting') values.set(source, parsed[source.name]);
    else values.set(source, source.collect(Object.fromEntries(familyVariables.get(source)!.map(([part, variable]) => [part, parsed[variable]]))));
  }
  return assemble(tree, values, environment) as ConfigurationOf<Tree>;
}

/** The object of `tree` from the settings' `values`, derived values built. */
function assemble(tree: SettingsTree, values: ReadonlyMap<unknown, unknown>, environment: Environment): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [property, node] of Object.entries(tree)) {
    let value: unknown;
    if (!isLeaf(node)) value = assemble(node, values, environment);
    else if (node.kind === 'derived') value = node.build(Object.fromEntries(Object.entries(node.from).map(([key, source]) => [key, values.get(source)])), environment);
    else value = values.get(node);
    if (value !== undefined) object[property] = value;
  }
  return object;
}
