/**
 * A restart of the app on the default embedded database (PGlite in a temporary `DATA_DIR`) keeps
 * usage (`myUsage`), history (`generation(id)` of a generation the new process never held) and
 * conversations (a REST `conversation_id` continued after the restart, its history sent to the model).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { graphqlRequest } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const GENERATION = `query($id: ID!) {
  generation(id: $id) {
    __typename id status model provider createdAt finishedAt
    ... on ChatGeneration { text finishReason conversationId usage { promptTokens completionTokens totalTokens } }
  }
}`;

const MY_USAGE = '{ myUsage(groupBy: [MODEL]) { groups { model requests completed promptTokens completionTokens totalTokens } } }';

/** One turn of the kept conversation over REST; resolves with the reply. */
async function turn(started: StartedApp, content: string) {
  const response = await postJson(started.url, '/v1/chat/completions', {
    model: 'stories260K',
    messages: [{ role: 'user', content }],
    max_tokens: 8,
    conversation_id: 'restart-story',
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { id: string; choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number } };
}

describe('a restart on the embedded database', () => {
  it('keeps usage, history and conversations', async () => {
    // An empty DATABASE_URL is an unset one: the default, PGlite in DATA_DIR/db; conversations then default to it.
    const settings = { DATA_DIR: await mkdtemp(join(tmpdir(), 'gateway-restart-')), DATABASE_URL: '' };
    let started = await startApp(settings);
    let id: string;
    let first: Awaited<ReturnType<typeof turn>>;
    let generationBefore: unknown;
    let usageBefore: unknown;
    try {
      expect(started.app.database?.driver).toBe('pglite');
      first = await turn(started, 'Once upon a time');
      id = first.id.replace(/^chatcmpl-/, '');
      generationBefore = await graphqlRequest(started.graphqlUrl, GENERATION, { id });
      await started.app.usageRecorder!.flush();
      usageBefore = await graphqlRequest(started.graphqlUrl, MY_USAGE);
      expect(usageBefore).toMatchObject({ data: { myUsage: { groups: [{ model: 'stories260K', requests: 1, completed: 1, completionTokens: 8 }] } } });
    } finally {
      await started.stop();
    }

    started = await startApp(settings);
    try {
      expect(started.app.generations.get(id)).toBeUndefined();
      expect(await graphqlRequest(started.graphqlUrl, GENERATION, { id })).toEqual(generationBefore);
      expect(await graphqlRequest(started.graphqlUrl, MY_USAGE)).toEqual(usageBefore);

      const second = await turn(started, 'Then the dog');
      // The model got the first turn too: the question and the reply before the new question.
      expect(second.usage.prompt_tokens).toBeGreaterThan(first.usage.prompt_tokens);
      const conversation = await graphqlRequest(started.graphqlUrl, '{ conversation(id: "restart-story") { messages { role content } } }');
      expect(conversation.data.conversation.messages).toEqual([
        { role: 'USER', content: 'Once upon a time' },
        { role: 'ASSISTANT', content: first.choices[0]!.message.content },
        { role: 'USER', content: 'Then the dog' },
        { role: 'ASSISTANT', content: second.choices[0]!.message.content },
      ]);
      await started.app.usageRecorder!.flush();
      const usageAfter = await graphqlRequest(started.graphqlUrl, MY_USAGE);
      expect(usageAfter.data.myUsage.groups).toMatchObject([{ model: 'stories260K', requests: 2, completed: 2, completionTokens: 16 }]);
    } finally {
      await started.stop();
    }
  });
});
