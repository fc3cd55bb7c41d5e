/**
 * Streams a story from the gateway's chat model to standard output, then generates an image and
 * prints its URL. Settings (environment variables):
 *
 * - `GATEWAY_URL`: the GraphQL WebSocket URL; default `ws://127.0.0.1:1337/graphql`.
 * - `GATEWAY_API_KEY`: an API key, when the gateway has authentication on.
 * - `CHAT_MODEL`, `IMAGE_MODEL`: models to use; default: the gateway's defaults.
 * - `PROMPT`: the chat prompt; default `Once upon a time`.
 * - `MAX_TOKENS`: the chat's token limit; default 64.
 * - `SEND_DOCUMENT_IDS=true`: send persisted document ids instead of operation texts, for a gateway
 *   started with `PERSISTED_OPERATIONS_FILE=src/gql/persisted-documents.json`.
 *
 * Run: `npx tsx src/main.ts` (from this folder). Output: the streamed text, then one line
 * `completed: <finish reason>, <prompt> + <completion> tokens`, then one line per image
 * `image: <url> <width>x<height> <MIME type>`.
 */
import { createGatewayClient } from './gateway-client.js';
import { generateImage } from './generate-image.js';
import { streamChat } from './stream-chat.js';

const environment = process.env;
const client = createGatewayClient({
  url: environment.GATEWAY_URL ?? 'ws://127.0.0.1:1337/graphql',
  ...(environment.GATEWAY_API_KEY && { apiKey: environment.GATEWAY_API_KEY }),
  sendDocumentIds: environment.SEND_DOCUMENT_IDS === 'true',
});

try {
  const completion = await streamChat(
    client,
    {
      messages: [{ role: 'USER', content: environment.PROMPT ?? 'Once upon a time' }],
      maxTokens: Number(environment.MAX_TOKENS ?? 64),
      ...(environment.CHAT_MODEL && { model: environment.CHAT_MODEL }),
    },
    { onText: (text) => process.stdout.write(text) },
  );
  const usage = completion.usage;
  process.stdout.write(`\ncompleted: ${completion.finishReason}, ${usage?.promptTokens ?? '?'} + ${usage?.completionTokens ?? '?'} tokens\n`);

  const images = await generateImage(client, {
    prompt: 'a lighthouse at dawn, watercolour',
    width: 256,
    height: 256,
    ...(environment.IMAGE_MODEL && { model: environment.IMAGE_MODEL }),
  });
  for (const image of images) process.stdout.write(`image: ${image.url} ${image.width}x${image.height} ${image.mimeType}\n`);
} finally {
  await client.dispose();
}
