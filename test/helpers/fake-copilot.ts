/**
 * A fake Microsoft Copilot (`docs/protocols.md` §5): a real `node:http` server on 127.0.0.1 (random
 * port) with a `ws` WebSocket server on the same port, speaking the frames gpt4free's `Copilot`
 * provider reads, and keeping conversation state the way Copilot does.
 *
 * - `POST /c/api/start` (JSON body with `timeZone`, `startNewConversation`, …): needs the session —
 *   the cookie `__Host-copilot-anon={anonymousCookie}` or `Authorization: Bearer {accessToken}` —
 *   else `401 {"error":{"message":"Invalid session"}}`. Answers `{"currentConversationId":"conv-N"}`
 *   with `Set-Cookie: __Host-copilot-session=session-N; Path=/; Secure; HttpOnly` (plus
 *   `options.startSetCookies`). `setStartReply` replaces the answer.
 * - WebSocket `/c/api/chat?api-version=2&clientSessionId={uuid}` (`&accessToken=…`): the same
 *   session check (401 refuses the handshake; `setSocketRefusal` refuses with another status). The
 *   client's one frame must be `{"event":"send","conversationId","content":[{"type":"text","text"}],"mode"}`
 *   with a conversation `start` made; otherwise an `error` frame answers. The user text is added to
 *   that conversation, then the turn's steps are played.
 *
 * ## What a turn gets
 * `setScenario(turn => steps)` until `setScenario(undefined)`; by default {@link conversationalReply}:
 * `received`, `startMessage`, for `mode: "reasoning"` two `chainOfThought` frames, the answer as
 * `appendText` words, `partCompleted`, `done`, `titleUpdate`, `suggestedFollowups` — the socket left
 * open for the client to close. The answer depends on the conversation: "… i am NAME …" → "Nice to
 * meet you, NAME!", a later "… my name …" → "Your name is NAME." (or "I do not know your name." in a
 * conversation that never heard it), anything else — a prompt of several lines too — → "You said: TEXT".
 *
 * ## Observing the client
 * `starts` (lower-cased headers, parsed body), `sockets` (URL, query, headers, frames received,
 * who closed it), `conversations` (id → user texts received, in order). `waitForSocketClose(n)`
 * resolves once `n` sockets have closed (by either side).
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';

/** The anonymous-session cookie the fake accepts unless told otherwise. */
export const FAKE_ANONYMOUS_COOKIE = 'anon-session-cookie-value-0123456789';

/** One user turn the fake received. */
export interface FakeCopilotTurn {
  conversationId: string;
  text: string;
  mode: string;
  /** The user texts of this conversation before this one. */
  earlier: string[];
}

/** One step of a turn: a frame (JSON, raw text or binary), a close, a dropped connection, or a wait. */
export type FakeCopilotStep =
  | { frame: Record<string, unknown> }
  | { raw: string }
  | { binary: Buffer }
  | { close: number }
  | { terminate: true }
  | { hold: Promise<unknown> };

/** A socket the fake accepted. */
export interface FakeCopilotSocket {
  url: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Frames the client sent, parsed. */
  received: unknown[];
  closedBy?: 'client' | 'server';
}

/** What the fake answers `POST /c/api/start` with, when set. */
export interface FakeStartReply {
  status: number;
  body: string;
  headers?: Record<string, string | string[]>;
  /** Nothing is sent before this settles. */
  hold?: Promise<unknown>;
}

export interface FakeCopilot {
  /** `http://127.0.0.1:PORT` */
  baseURL: string;
  starts: Array<{ headers: IncomingHttpHeaders; body: unknown }>;
  sockets: FakeCopilotSocket[];
  conversations: Map<string, string[]>;
  setScenario(scenario: ((turn: FakeCopilotTurn) => FakeCopilotStep[]) | undefined): void;
  setStartReply(reply: FakeStartReply | undefined): void;
  setSocketRefusal(status: number | undefined): void;
  waitForSocketClose(count?: number): Promise<void>;
  close(): Promise<void>;
}

const sendFrameSchema = z.strictObject({
  event: z.literal('send'),
  conversationId: z.string().min(1),
  content: z.array(z.strictObject({ type: z.literal('text'), text: z.string() })).length(1),
  mode: z.enum(['chat', 'reasoning', 'smart']),
});

/** The answer's text for a turn (see the module comment). */
export function answerFor(turn: FakeCopilotTurn): string {
  if (turn.text.includes('\n')) return `You said: ${turn.text}`;
  const introduced = /\bi am (\w+)/i.exec(turn.text);
  if (introduced) return `Nice to meet you, ${introduced[1]}!`;
  if (/\bmy name\b/i.test(turn.text)) {
    const name = turn.earlier.map((text) => /\bi am (\w+)/i.exec(text)?.[1]).findLast(Boolean);
    return name ? `Your name is ${name}.` : 'I do not know your name.';
  }
  return `You said: ${turn.text}`;
}

/** The default steps of a turn (see the module comment). */
export function conversationalReply(turn: FakeCopilotTurn): FakeCopilotStep[] {
  const words = answerFor(turn).split(/(?<= )/);
  return [
    { frame: { event: 'received', conversationId: turn.conversationId } },
    { frame: { event: 'startMessage', messageId: 'message-1' } },
    ...(turn.mode === 'reasoning' ? [{ frame: { event: 'chainOfThought', text: 'Thinking about ' } }, { frame: { event: 'chainOfThought', text: 'it.' } }] : []),
    ...words.map((text) => ({ frame: { event: 'appendText', text, messageId: 'message-1' } })),
    { frame: { event: 'partCompleted', messageId: 'message-1' } },
    { frame: { event: 'done', messageId: 'message-1' } },
    { frame: { event: 'titleUpdate', title: 'A chat' } },
    { frame: { event: 'suggestedFollowups', suggestions: ['Tell me more'] } },
  ];
}

/** Whether the request carries the session the fake accepts. */
function hasSession(headers: IncomingHttpHeaders, query: URLSearchParams, accessToken: string | undefined, anonymousCookie: string): boolean {
  const cookies = (headers.cookie ?? '').split(';').map((pair) => pair.trim());
  if (cookies.includes(`__Host-copilot-anon=${anonymousCookie}`)) return true;
  if (accessToken === undefined) return false;
  return headers.authorization === `Bearer ${accessToken}` || query.get('accessToken') === accessToken;
}

/** Starts the fake. `accessToken`: a token accepted instead of the cookie; `startSetCookies`: more `Set-Cookie` headers of `start`. */
export async function startFakeCopilot(options: { anonymousCookie?: string; accessToken?: string; startSetCookies?: string[] } = {}): Promise<FakeCopilot> {
  const anonymousCookie = options.anonymousCookie ?? FAKE_ANONYMOUS_COOKIE;
  const starts: FakeCopilot['starts'] = [];
  const sockets: FakeCopilotSocket[] = [];
  const conversations = new Map<string, string[]>();
  let scenario: ((turn: FakeCopilotTurn) => FakeCopilotStep[]) | undefined;
  let startReply: FakeStartReply | undefined;
  let socketRefusal: number | undefined;
  let closedSockets = 0;
  const closeWaiters: Array<{ count: number; resolve: () => void }> = [];
  const connections = new Set<Socket>();

  const server: Server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    if (request.method !== 'POST' || url.pathname !== '/c/api/start') {
      response.writeHead(404).end();
      return;
    }
    let text = '';
    for await (const chunk of request) text += String(chunk);
    starts.push({ headers: request.headers, body: JSON.parse(text || 'null') as unknown });
    if (startReply) {
      await startReply.hold;
      if (response.destroyed) return;
      response.writeHead(startReply.status, { 'content-type': 'application/json', ...startReply.headers }).end(startReply.body);
      return;
    }
    if (!hasSession(request.headers, url.searchParams, options.accessToken, anonymousCookie)) {
      response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'Invalid session' } }));
      return;
    }
    const conversationId = `conv-${conversations.size + 1}`;
    conversations.set(conversationId, []);
    response
      .writeHead(200, {
        'content-type': 'application/json',
        'set-cookie': [`__Host-copilot-session=session-${conversations.size}; Path=/; Secure; HttpOnly`, ...(options.startSetCookies ?? [])],
      })
      .end(JSON.stringify({ currentConversationId: conversationId, isNewUser: false }));
  });
  server.on('connection', (connection) => {
    connections.add(connection);
    connection.on('close', () => connections.delete(connection));
  });

  const webSockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, connection, head) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    const clientSessionId = url.searchParams.get('clientSessionId') ?? '';
    const refuse = (status: number, message: string) => {
      const body = JSON.stringify({ error: { message } });
      connection.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    if (url.pathname !== '/c/api/chat' || url.searchParams.get('api-version') !== '2' || !/^[0-9a-f-]{36}$/.test(clientSessionId)) return refuse(404, 'Not found');
    if (socketRefusal !== undefined) return refuse(socketRefusal, 'Refused by the test');
    if (!hasSession(request.headers, url.searchParams, options.accessToken, anonymousCookie)) return refuse(401, 'Invalid session');
    webSockets.handleUpgrade(request, connection, head, (socket) => serveSocket(socket, request.url ?? '', url, request.headers));
  });

  function serveSocket(socket: WebSocket, rawURL: string, url: URL, headers: IncomingHttpHeaders): void {
    const record: FakeCopilotSocket = { url: rawURL, query: Object.fromEntries(url.searchParams), headers, received: [] };
    sockets.push(record);
    let serverClosing = false;
    socket.on('close', () => {
      record.closedBy ??= serverClosing ? 'server' : 'client';
      closedSockets++;
      for (const waiter of closeWaiters.filter((candidate) => closedSockets >= candidate.count)) {
        closeWaiters.splice(closeWaiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
    socket.on('error', () => {});
    socket.on('message', async (data) => {
      const json: unknown = JSON.parse(String(data));
      record.received.push(json);
      const parsed = sendFrameSchema.safeParse(json);
      const earlier = parsed.success ? conversations.get(parsed.data.conversationId) : undefined;
      if (!parsed.success || !earlier) {
        socket.send(JSON.stringify({ event: 'error', message: parsed.success ? 'Conversation not found' : 'Invalid send frame' }));
        return;
      }
      const turn: FakeCopilotTurn = { conversationId: parsed.data.conversationId, text: parsed.data.content[0]!.text, mode: parsed.data.mode, earlier: [...earlier] };
      earlier.push(turn.text);
      for (const step of (scenario ?? conversationalReply)(turn)) {
        if (socket.readyState !== socket.OPEN) return;
        if ('frame' in step) socket.send(JSON.stringify(step.frame));
        else if ('raw' in step) socket.send(step.raw);
        else if ('binary' in step) socket.send(step.binary, { binary: true });
        else if ('hold' in step) await step.hold;
        else {
          serverClosing = true;
          if ('close' in step) socket.close(step.close);
          else socket.terminate();
          return;
        }
      }
    });
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}`,
    starts,
    sockets,
    conversations,
    setScenario: (next) => {
      scenario = next;
    },
    setStartReply: (reply) => {
      startReply = reply;
    },
    setSocketRefusal: (status) => {
      socketRefusal = status;
    },
    waitForSocketClose: (count = 1) =>
      closedSockets >= count ? Promise.resolve() : new Promise<void>((resolve) => closeWaiters.push({ count, resolve })),
    close: async () => {
      for (const client of webSockets.clients) client.terminate();
      webSockets.close();
      for (const connection of connections) connection.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
