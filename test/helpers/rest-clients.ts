/**
 * Plain-`fetch` clients of the REST API, written the way gpt4free's example clients read a
 * streaming chat completion (`docs/protocols.md` §1): the body line by line, every
 * `data: ` line parsed as JSON and checked for `error`, until `data: [DONE]`.
 */

/** The `data: ` payloads of a server-sent event body, in order (other lines are skipped). */
export async function* dataLines(response: Response): AsyncGenerator<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(bytes, { stream: true });
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline).replace(/\r$/, '');
      buffered = buffered.slice(newline + 1);
      if (line.startsWith('data: ')) yield line.slice('data: '.length);
      newline = buffered.indexOf('\n');
    }
  }
  buffered += decoder.decode();
  if (buffered.startsWith('data: ')) yield buffered.slice('data: '.length);
}

/** A chat completion chunk, as far as the tests read it. */
export interface ChatChunk {
  id: string;
  object: string;
  created: number;
  model: string;
  provider: string;
  conversation_id?: string;
  choices: Array<{ index: number; delta: { role?: string; content?: string }; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** What a streaming chat reply held: its chunks, the concatenated text, an in-band error, and whether `[DONE]` came last. */
export interface CollectedChatStream {
  chunks: ChatChunk[];
  text: string;
  error?: { message: string; type?: string; code?: string; provider?: string };
  done: boolean;
  /** Lines after `[DONE]` or after the error line other than `[DONE]` (should be none). */
  trailing: string[];
}

/** Reads a whole streaming chat reply like gpt4free's example client, checking `json.error` on every line. */
export async function collectChatStream(response: Response): Promise<CollectedChatStream> {
  const collected: CollectedChatStream = { chunks: [], text: '', done: false, trailing: [] };
  for await (const data of dataLines(response)) {
    if (collected.done) {
      collected.trailing.push(data);
      continue;
    }
    if (data === '[DONE]') {
      collected.done = true;
      continue;
    }
    const json = JSON.parse(data) as ChatChunk & { error?: CollectedChatStream['error'] };
    if (json.error) {
      if (collected.error) collected.trailing.push(data);
      collected.error = json.error;
      continue;
    }
    if (collected.error) collected.trailing.push(data);
    collected.chunks.push(json);
    collected.text += json.choices[0]?.delta.content ?? '';
  }
  return collected;
}

/** `POST {url}{path}` with a JSON body (or a raw string). */
export function postJson(url: string, path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
}
