import { readFileSync } from 'node:fs';
import type { GraphQLField, GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printSortedSchema } from '../scripts/print-schema.js';
import { schema } from '../src/schema/index.js';

/** `name(arg: Type, …): Type` of each field, arguments sorted. */
function signatures(type: GraphQLObjectType | null | undefined): string[] {
  return Object.values(type?.getFields() ?? {}).map((field: GraphQLField<unknown, unknown>) => {
    const args = field.args.map((arg) => `${arg.name}: ${String(arg.type)}`).sort();
    return `${field.name}${args.length > 0 ? `(${args.join(', ')})` : ''}: ${String(field.type)}`;
  });
}

describe('schema.graphql', () => {
  it('is the sorted print of the Pothos schema (run `npm run print-schema` after changing the schema)', () => {
    const committed = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printSortedSchema());
  });

  it('keeps the public contract of issue 2 (starts nullable since issue 17: each aliased start succeeds or fails on its own)', () => {
    expect(signatures(schema.getMutationType())).toEqual(
      expect.arrayContaining([
        'startChatCompletion(input: ChatCompletionInput!): ChatGeneration',
        'startImageGeneration(input: ImageGenerationInput!): ImageGeneration',
        'cancelGeneration(id: ID!): Generation!',
      ]),
    );
    expect(signatures(schema.getSubscriptionType())).toEqual(
      expect.arrayContaining([
        'chatCompletionEvents(after: Int, generationId: ID!): ChatCompletionEvent!',
        'chatCompletion(input: ChatCompletionInput!): ChatCompletionEvent!',
      ]),
    );
    expect(signatures(schema.getQueryType())).toEqual(
      expect.arrayContaining([
        'generation(id: ID!): Generation',
        'generations(after: String, first: Int, kind: GenerationKind, status: GenerationStatus): GenerationConnection!',
        'models: [Model!]!',
        'providers: [Provider!]!',
      ]),
    );
    const printed = printSortedSchema();
    expect(printed).toContain(
      'union ChatCompletionEvent = ChatCompletionCompleted | ChatCompletionStarted | ChatReasoningDelta | ChatTokenDelta | ChatToolCallDelta | GenerationCancelled | GenerationFailed',
    );
    expect(printed).toMatch(/enum GenerationStatus \{\s+CANCELLED\s+COMPLETED\s+FAILED\s+QUEUED\s+RUNNING\s+\}/);
    expect(printed).toMatch(/enum FinishReason \{\s+CONTENT_FILTER\s+LENGTH\s+STOP\s+TOOL_CALLS\s+\}/);
    for (const eventType of ['ChatCompletionStarted', 'ChatTokenDelta', 'ChatCompletionCompleted', 'GenerationFailed', 'GenerationCancelled']) {
      expect(printed).toContain(`type ${eventType} implements GenerationEvent`);
    }
  });
});
