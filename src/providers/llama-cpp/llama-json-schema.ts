/**
 * A JSON Schema turned into the subset node-llama-cpp builds a grammar from (`GbnfJsonSchema`:
 * https://node-llama-cpp.withcat.ai/guide/grammar#json-schema), so that every reply the grammar lets
 * the model write is valid against the original schema — or refused, naming what cannot be enforced.
 *
 * node-llama-cpp's `createGrammarForJsonSchema` throws for none of this: it ignores keywords it does
 * not know (`pattern`, `minimum`, `allOf`, …), generates only `null` for a schema without a type it
 * knows (`anyOf`, `{}`, `{properties}` without `type`) and falls back to any JSON for a `$ref` it
 * cannot resolve. So the schema is checked and rewritten here first:
 * - kept: `type` (one or several), `properties`, `additionalProperties`, `minProperties`,
 *   `maxProperties`, `items`, `prefixItems`, `minItems`, `maxItems`, `minLength`, `maxLength`,
 *   `format` `date-time`/`date`/`time`, `enum`, `const` (of strings, numbers, booleans, null),
 *   `oneOf`, `$ref` to `#/$defs/…` or `#/definitions/…`, annotations (`description`, `title`, …);
 * - rewritten: `anyOf` → `oneOf` (the grammar produces one alternative: the reply matches `anyOf`);
 *   a list of types → `oneOf` of one schema per type; draft-07 `definitions` → `$defs`; tuple
 *   `items: [...]` → `prefixItems`; `true`/`{}` → any JSON value; a schema without `type` whose
 *   keywords belong to one type (e.g. `properties`) → that type;
 * - narrowed, still valid: every listed property is written (node-llama-cpp makes them all
 *   required); an object with `properties` gets no others unless `additionalProperties` allows them;
 * - refused: `pattern`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`,
 *   `allOf`, `not`, `if`/`then`/`else`, `patternProperties`, `propertyNames`, `dependentRequired`,
 *   `dependentSchemas`, `dependencies`, `contains`, `uniqueItems: true`, `unevaluated…`, other
 *   formats, `required` names that are not properties, recursion to `#`, bounds the grammar cannot
 *   keep (`maxItems` below the `prefixItems`, `maxProperties` below the properties, min above max).
 *
 * `oneOf` is generated as "one of the alternatives": a value that also matches another alternative
 * would break `oneOf`'s "exactly one"; schemas rarely allow that, and it is not checked.
 */
import type { GbnfJsonSchema } from 'node-llama-cpp';

/** A schema that node-llama-cpp's grammar cannot enforce; `problems` say what and where (JSON Pointer paths). */
export class UnsupportedSchemaError extends Error {
  override readonly name = 'UnsupportedSchemaError';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

type Schema = Record<string, unknown>;

const REFUSED_KEYWORDS = [
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'allOf',
  'not',
  'if',
  'then',
  'else',
  'patternProperties',
  'propertyNames',
  'dependentRequired',
  'dependentSchemas',
  'dependencies',
  'contains',
  'minContains',
  'maxContains',
  'unevaluatedProperties',
  'unevaluatedItems',
  '$dynamicRef',
  '$recursiveRef',
];

/** Keywords that constrain a value (beside `$ref`, `oneOf` or `anyOf`, which node-llama-cpp would ignore). */
const CONSTRAINT_KEYWORDS = ['type', 'enum', 'const', 'properties', 'additionalProperties', 'required', 'minProperties', 'maxProperties', 'items', 'prefixItems', 'minItems', 'maxItems', 'minLength', 'maxLength', 'format', 'oneOf', 'anyOf', '$ref'];

const OBJECT_KEYWORDS = ['properties', 'additionalProperties', 'required', 'minProperties', 'maxProperties'];
const ARRAY_KEYWORDS = ['items', 'prefixItems', 'minItems', 'maxItems'];
const STRING_KEYWORDS = ['minLength', 'maxLength', 'format'];
const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'];
const FORMATS = ['date-time', 'date', 'time'];

/** Any JSON value, as node-llama-cpp can generate it. */
const ANY_VALUE: Schema = {
  oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'object', additionalProperties: true }, { type: 'array' }],
};

const isSchemaObject = (value: unknown): value is Schema => typeof value === 'object' && value !== null && !Array.isArray(value);
const isLiteral = (value: unknown): boolean => value === null || ['string', 'number', 'boolean'].includes(typeof value);
const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;
const pointer = (path: string, ...keys: Array<string | number>): string =>
  `${path}/${keys.map((key) => String(key).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;

/**
 * `schema` (a JSON Schema, draft-07 to 2020-12) as node-llama-cpp's grammar schema.
 * @throws UnsupportedSchemaError naming every keyword or shape the grammar cannot enforce.
 */
export function toGrammarSchema(schema: unknown): GbnfJsonSchema {
  const problems: string[] = [];
  const converted = convert(schema, '#', new Set(), problems);
  if (problems.length > 0) throw new UnsupportedSchemaError(problems);
  return converted as GbnfJsonSchema;
}

function convert(schema: unknown, path: string, definitions: ReadonlySet<string>, problems: string[]): Schema {
  const problem = (where: string, what: string): Schema => {
    problems.push(`${what} at ${where}`);
    return {};
  };
  if (schema === true) return ANY_VALUE;
  if (schema === false) return problem(path, 'the schema false (no value matches it)');
  if (!isSchemaObject(schema)) return problem(path, 'a value that is not a schema');

  for (const keyword of REFUSED_KEYWORDS) if (keyword in schema) problem(path, `"${keyword}"`);
  if (schema.uniqueItems === true) problem(path, '"uniqueItems"');

  // Definitions of this level, by name: `$defs` and draft-07's `definitions` alike.
  const ownDefinitions = { ...(isSchemaObject(schema.definitions) ? schema.definitions : {}), ...(isSchemaObject(schema.$defs) ? schema.$defs : {}) };
  const scope = new Set([...definitions, ...Object.keys(ownDefinitions)]);
  const $defs = Object.fromEntries(Object.entries(ownDefinitions).map(([name, definition]) => [name, convert(definition, pointer(path, '$defs', name), scope, problems)]));
  const annotations: Schema = {
    ...(typeof schema.description === 'string' && { description: schema.description }),
    ...(Object.keys($defs).length > 0 && { $defs }),
  };
  const besides = (keyword: string): void => {
    const others = CONSTRAINT_KEYWORDS.filter((other) => other !== keyword && other in schema);
    if (others.length > 0) problem(path, `${others.map((other) => `"${other}"`).join(', ')} beside "${keyword}"`);
  };

  if ('$ref' in schema) {
    besides('$ref');
    const match = typeof schema.$ref === 'string' ? /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(schema.$ref) : null;
    const name = match?.[1]?.replaceAll('~1', '/').replaceAll('~0', '~');
    if (name === undefined || !scope.has(name)) return problem(path, `"$ref" ${JSON.stringify(schema.$ref)} (only #/$defs/… and #/definitions/… of this schema)`);
    return { ...annotations, $ref: `#/$defs/${name}` };
  }
  if ('anyOf' in schema || 'oneOf' in schema) {
    const keyword = 'anyOf' in schema ? 'anyOf' : 'oneOf';
    besides(keyword);
    const alternatives = schema[keyword];
    if (!Array.isArray(alternatives) || alternatives.length === 0) return problem(path, `"${keyword}" that is not a list of schemas`);
    return { ...annotations, oneOf: alternatives.map((alternative, index) => convert(alternative, pointer(path, keyword, index), scope, problems)) };
  }
  if ('const' in schema) {
    if (!isLiteral(schema.const)) return problem(path, '"const" of an object or array');
    return { ...annotations, const: schema.const };
  }
  if ('enum' in schema) {
    if (!Array.isArray(schema.enum) || schema.enum.length === 0 || !schema.enum.every(isLiteral)) {
      return problem(path, '"enum" that is not a list of strings, numbers, booleans or null');
    }
    return { ...annotations, enum: schema.enum };
  }

  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [impliedType(schema)] : [schema.type];
  for (const type of types) if (type !== undefined && !TYPES.includes(type as string)) return problem(path, `the type ${JSON.stringify(type)}`);
  if (types.length === 0) return problem(path, 'an empty list of types');
  if (types.length > 1) {
    return { ...annotations, oneOf: types.map((type) => convertTyped(schema, type as string, path, scope, problems, problem)) };
  }
  if (types[0] === undefined) return { ...ANY_VALUE, ...annotations };
  return { ...annotations, ...convertTyped(schema, types[0] as string, path, scope, problems, problem) };
}

/** The one type a schema without `type` implies by its keywords, if any. */
function impliedType(schema: Schema): string | undefined {
  if (OBJECT_KEYWORDS.some((keyword) => keyword in schema)) return 'object';
  if (ARRAY_KEYWORDS.some((keyword) => keyword in schema)) return 'array';
  if (STRING_KEYWORDS.some((keyword) => keyword in schema)) return 'string';
  return undefined;
}

function convertTyped(
  schema: Schema,
  type: string,
  path: string,
  scope: ReadonlySet<string>,
  problems: string[],
  problem: (where: string, what: string) => Schema,
): Schema {
  const bounds = (minimum: string, maximum: string): { min?: number; max?: number } => {
    const min = schema[minimum];
    const max = schema[maximum];
    if (min !== undefined && !isCount(min)) problem(path, `"${minimum}" that is not a count`);
    if (max !== undefined && !isCount(max)) problem(path, `"${maximum}" that is not a count`);
    if (isCount(min) && isCount(max) && max < min) problem(path, `"${maximum}" below "${minimum}"`);
    return { ...(isCount(min) && { min }), ...(isCount(max) && { max }) };
  };

  if (type === 'object') {
    const properties = isSchemaObject(schema.properties) ? schema.properties : {};
    const names = Object.keys(properties);
    const required = Array.isArray(schema.required) ? schema.required : [];
    for (const name of required) if (!names.includes(name as string)) problem(path, `the required property ${JSON.stringify(name)} that is not among "properties"`);
    const { min, max } = bounds('minProperties', 'maxProperties');
    if (max !== undefined && max < names.length) problem(path, `"maxProperties" below the number of properties (every listed property is written)`);
    // JSON Schema allows other properties unless told not to; node-llama-cpp writes none unless allowed.
    // Allowed here where the schema needs them: no `properties` at all (any object), or more than they give.
    const additional = schema.additionalProperties;
    const allowOthers = additional === undefined ? !('properties' in schema) || (min ?? 0) > names.length : additional;
    if (allowOthers === false && min !== undefined && min > names.length) problem(path, '"minProperties" above the properties allowed');
    return {
      type: 'object',
      properties: Object.fromEntries(names.map((name) => [name, convert(properties[name], pointer(path, 'properties', name), scope, problems)])),
      ...(allowOthers !== false && { additionalProperties: allowOthers === true ? true : convert(allowOthers, pointer(path, 'additionalProperties'), scope, problems) }),
      ...(min !== undefined && { minProperties: min }),
      ...(max !== undefined && { maxProperties: max }),
    };
  }
  if (type === 'array') {
    // Draft-07 tuples (`items` as a list, `additionalItems` for the rest) are 2020-12's `prefixItems` and `items`.
    const tuple = Array.isArray(schema.items);
    const prefixItems = tuple ? (schema.items as unknown[]) : Array.isArray(schema.prefixItems) ? schema.prefixItems : undefined;
    const rest = tuple ? schema.additionalItems : schema.items;
    let { min, max } = bounds('minItems', 'maxItems');
    if (prefixItems && max !== undefined && max < prefixItems.length) problem(path, `"maxItems" below the number of "prefixItems" (every prefix item is written)`);
    if (rest === false) max = Math.min(max ?? Number.POSITIVE_INFINITY, prefixItems?.length ?? 0);
    if (rest === false && min !== undefined && max !== undefined && min > max) problem(path, '"minItems" above the items allowed');
    return {
      type: 'array',
      ...(prefixItems && { prefixItems: prefixItems.map((item, index) => convert(item, pointer(path, tuple ? 'items' : 'prefixItems', index), scope, problems)) }),
      ...(rest !== undefined && rest !== true && rest !== false && { items: convert(rest, pointer(path, tuple ? 'additionalItems' : 'items'), scope, problems) }),
      ...(min !== undefined && { minItems: min }),
      ...(max !== undefined && { maxItems: max }),
    };
  }
  if (type === 'string') {
    const { min, max } = bounds('minLength', 'maxLength');
    if (schema.format === undefined) return { type: 'string', ...(min !== undefined && { minLength: min }), ...(max !== undefined && { maxLength: max }) };
    if (!FORMATS.includes(schema.format as string)) return problem(path, `the format ${JSON.stringify(schema.format)} (only ${FORMATS.join(', ')})`);
    if (min !== undefined || max !== undefined) return problem(path, '"minLength"/"maxLength" beside "format"');
    return { type: 'string', format: schema.format };
  }
  return { type };
}
