/**
 * The grammar that holds a local model to the reply format a request asks for (OpenAI's
 * `response_format`): any JSON object, or JSON matching a schema. node-llama-cpp samples only tokens
 * the grammar allows, so the reply parses and matches unless it is cut short (finish reason `length`).
 * https://node-llama-cpp.withcat.ai/guide/grammar
 */
import type { GbnfJsonSchema, Llama, LlamaGrammar } from 'node-llama-cpp';
import type { ChatResponseFormat } from '../provider.js';
import { toGrammarSchema } from './llama-json-schema.js';

/** Grammars one model keeps, most recently used last (each holds a parsed grammar in llama.cpp; requests may send any schema). */
const MAX_CACHED_GRAMMARS = 64;

/** The key of the any-JSON-object grammar. */
const JSON_OBJECT_KEY = 'json-object';

/**
 * The grammars of one model, by reply format, built on first use: a JSON-schema grammar costs a
 * schema conversion, a GBNF text and llama.cpp's parse of it, so each is kept per schema text.
 */
export class GrammarCache {
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  /**
   * The grammar for `format`: node-llama-cpp's JSON grammar (`llama.getGrammarFor('json')`, an object
   * at the top) for `json-object`; `llama.createGrammarForJsonSchema` of the converted schema for
   * `json-schema` (see `llama-json-schema.ts`); none for `text` or no format.
   * @throws UnsupportedSchemaError when the schema uses what the grammar cannot enforce (not cached).
   */
  async grammarFor(format: ChatResponseFormat | undefined): Promise<LlamaGrammar | undefined> {
    if (!format || format.type === 'text') return undefined;
    const key = format.type === 'json-object' ? JSON_OBJECT_KEY : JSON.stringify(format.schema);
    let grammar = this.grammars.get(key);
    if (grammar) {
      // Most recently used last: the first entry is the one to evict.
      this.grammars.delete(key);
    } else {
      grammar = format.type === 'json-object' ? this.llama.getGrammarFor('json') : this.buildSchemaGrammar(format.schema);
      grammar.catch(() => this.grammars.get(key) === grammar && this.grammars.delete(key));
    }
    this.grammars.set(key, grammar);
    if (this.grammars.size > MAX_CACHED_GRAMMARS) this.grammars.delete(this.grammars.keys().next().value!);
    return grammar;
  }

  private async buildSchemaGrammar(schema: Record<string, unknown>): Promise<LlamaGrammar> {
    // The schema is only known at run time: its type is node-llama-cpp's schema type itself.
    return this.llama.createGrammarForJsonSchema<GbnfJsonSchema, Record<string, GbnfJsonSchema>>(toGrammarSchema(schema));
  }
}
