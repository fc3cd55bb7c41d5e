/**
 * The wire shapes of Microsoft Copilot's web API as gpt4free's `Copilot` provider speaks it
 * (`docs/protocols.md` §5), as zod schemas of the fields this provider reads (extra fields pass):
 * the body and reply of `POST /c/api/start`, the `send` frame, and the JSON text frames the chat
 * WebSocket answers with.
 */
import { z } from 'zod';

/** How Copilot answers a model: `chat` (Copilot), `reasoning` (Think Deeper), `smart` (Smart (GPT-5)). */
export type CopilotMode = 'chat' | 'reasoning' | 'smart';

/**
 * The body of `POST /c/api/start` (§5 step 1): a new conversation in the caller's time zone (an
 * IANA name such as `Europe/Berlin`), with the flags the web client sends, all true.
 */
export interface CopilotStartBody {
  timeZone: string;
  startNewConversation: true;
  teenSupportEnabled: true;
  correctPersonalizationSetting: true;
  performUserMerge: true;
  deferredDataUseCapable: true;
}

/** The reply of `POST /c/api/start`: the new conversation's id is `currentConversationId`. */
export const copilotStartReplySchema = z.looseObject({
  currentConversationId: z.string().min(1),
});

/**
 * The one frame sent on the chat WebSocket (§5 step 2):
 * `{"event":"send","conversationId":"…","content":[{"type":"text","text":"<prompt>"}],"mode":"chat"}`.
 */
export interface CopilotSendFrame {
  event: 'send';
  conversationId: string;
  content: Array<{ type: 'text'; text: string }>;
  mode: CopilotMode;
}

/** Any frame the chat WebSocket sends: a JSON object naming its `event` (§5 step 3). */
export const copilotFrameSchema = z.looseObject({ event: z.string() });

/** `appendText`, `replaceText` and `chainOfThought`: `{text}`. */
export const copilotTextFrameSchema = z.looseObject({ text: z.string() });

/** `generatingImage`: `{prompt}`, the prompt of the image being made. */
export const copilotGeneratingImageFrameSchema = z.looseObject({ prompt: z.string().nullish() });

/** `imageGenerated`: `{url, thumbnailUrl}`; `url` is where the finished image is (http or https). */
export const copilotImageGeneratedFrameSchema = z.looseObject({
  url: z.url({ protocol: /^https?$/ }),
  thumbnailUrl: z.string().nullish(),
});

/**
 * `error`: the answer failed. gpt4free reports the whole frame; the fields seen are a `message`
 * and an error code (`errorCode` or `code`), each optional.
 */
export const copilotErrorFrameSchema = z.looseObject({
  message: z.string().nullish(),
  errorCode: z.string().nullish(),
  code: z.string().nullish(),
});
