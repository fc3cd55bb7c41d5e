/**
 * `examples/typescript-client`: the client GraphQL Code Generator makes from `schema.graphql`. Its
 * generated `src/gql/` is committed, so the test checks that codegen still writes exactly those
 * files (a change to the schema or to an operation without regenerating fails here), that the
 * example type-checks with its own tsconfig (a field the schema lacks is a compile error), and that
 * its script streams a chat from the real model and an image from a fake Gradio Space through the
 * real server, over graphql-ws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGradioSpace, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { committedFiles, runCodegen, runTypeScriptClient, typeCheckExample, TYPESCRIPT_CLIENT_EXAMPLE } from '../helpers/examples.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const CHAT_MODEL = 'llama-cpp:stories260K';
const IMAGE_MODEL = 'hf-space:flux-1-schnell';

describe('the TypeScript client example', () => {
  it('has committed exactly what codegen generates from schema.graphql (no drift)', async () => {
    const generated = await runCodegen(TYPESCRIPT_CLIENT_EXAMPLE);
    const committed = committedFiles(TYPESCRIPT_CLIENT_EXAMPLE, 'src/gql');
    expect(generated.map((file) => file.path).sort()).toEqual(committed.map((file) => file.path).sort());
    expect(generated.map((file) => file.path)).toContain('src/gql/persisted-documents.json');
    for (const file of generated) {
      expect(file.content, `${file.path} differs from codegen's output: run npx graphql-codegen --config codegen.ts in examples/typescript-client`).toBe(
        committed.find((candidate) => candidate.path === file.path)!.content,
      );
    }
  });

  it('type-checks with its own tsconfig', async () => {
    await expect(typeCheckExample(TYPESCRIPT_CLIENT_EXAMPLE)).resolves.toBe('');
  });

  describe('against the server', () => {
    let space: FakeGradioSpace;
    let started: StartedApp;

    beforeAll(async () => {
      space = await startFakeGradioSpace();
      started = await startApp({ HF_SPACES_ENABLED: 'true', HF_FLUX_SCHNELL_URL: space.baseURL });
    });

    afterAll(async () => {
      await started?.stop();
      await space?.close();
    });

    it('streams a chat and an image with the generated types over graphql-ws', async () => {
      const output = await runTypeScriptClient({ GATEWAY_URL: started.webSocketUrl, CHAT_MODEL, IMAGE_MODEL, PROMPT: 'Once upon a time', MAX_TOKENS: '24' });

      // The same request straight over graphql-ws gives the same text: the local model samples greedily by default.
      const client = createWebSocketClient(started.webSocketUrl);
      const results = await collectWebSocket(
        client,
        'subscription ($input: ChatCompletionInput!) { chatCompletion(input: $input) { __typename ... on ChatCompletionCompleted { text finishReason } } }',
        { input: { messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 24, model: CHAT_MODEL } },
      );
      await client.dispose();
      const completed = results.map((result) => result.data!.chatCompletion).find((event) => event.__typename === 'ChatCompletionCompleted');
      expect(output.chatText.length).toBeGreaterThan(0);
      expect(output.chatText).toBe(completed.text);
      expect(output.completed.finishReason).toBe(completed.finishReason);
      expect(output.completed.completionTokens).toBeGreaterThan(0);
      expect(output.completed.completionTokens).toBeLessThanOrEqual(24);

      expect(output.images).toHaveLength(1);
      const [image] = output.images;
      expect(image).toMatchObject({ width: 256, height: 256, mimeType: 'image/png' });
      // The image is stored on the gateway and served from there.
      const response = await fetch(image!.url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/png');
      expect(space.requests).toHaveLength(1);
    });
  });
});
