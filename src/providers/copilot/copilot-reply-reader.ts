/**
 * Copilot's answer frames (`docs/protocols.md` §5 step 3) turned into stream parts, one frame at a
 * time: text deltas, reasoning deltas, generated images as Markdown, and where the answer ends.
 *
 * `replaceText` replaces the text of the answer so far, which a stream cannot take back. It is
 * handed on as what it adds: nothing when it equals Copilot's text so far, the new end when it
 * extends it, and otherwise — a correction — the whole replacement after a paragraph break, so the
 * reader sees Copilot's final words in full after what was already sent. Later `appendText` frames
 * extend the replacement, and are handed on as they come.
 */
import type { z } from 'zod';
import { shortenMessage, type ProviderErrors } from '../http-errors.js';
import type { ChatStreamPart } from '../provider.js';
import {
  copilotErrorFrameSchema,
  copilotFrameSchema,
  copilotGeneratingImageFrameSchema,
  copilotImageGeneratedFrameSchema,
  copilotTextFrameSchema,
} from './copilot-api.js';

/** What one frame gave. */
export interface CopilotFrameResult {
  /** The parts to hand on, in order (often none). */
  parts: ChatStreamPart[];
  /** Whether the answer is over and the socket can close: `suggestedFollowups`, or an `error` after `done`. */
  last: boolean;
}

/** Longest alternative text of an image, characters. */
const MAX_IMAGE_ALT_CHARACTERS = 200;

/** An image as Markdown: `![prompt](url)`, the prompt on one line without brackets or backslashes, `(` and `)` of the URL escaped. */
function imageMarkdown(url: string, prompt: string | null | undefined): string {
  const alt = (prompt ?? '').replace(/[[\]\\]/g, '').replace(/\s+/g, ' ').trim().slice(0, MAX_IMAGE_ALT_CHARACTERS) || 'image';
  const href = new URL(url).href.replaceAll('(', '%28').replaceAll(')', '%29');
  return `![${alt}](${href})`;
}

/** Reads the frames of one answer; see the module comment. */
export class CopilotReplyReader {
  /** Copilot's text as it stands now (replacements applied). */
  private copilotText = '';
  /** The text handed on so far. */
  private sent = '';
  private reasoningCharacters = 0;
  /** The prompt of the image being generated (`generatingImage`), for its alternative text. */
  private imagePrompt: string | undefined;
  /** An image was the last thing sent: text that follows starts a new paragraph. */
  private paragraphPending = false;
  private doneReceived = false;

  /**
   * @param providerId as messages name the upstream.
   * @param errors the provider's errors for this turn (the session's secrets redacted).
   * @param maxCharacters the most text and reasoning together one answer may hand on, characters.
   */
  constructor(
    private readonly providerId: string,
    private readonly errors: ProviderErrors,
    private readonly maxCharacters: number,
  ) {}

  /** Whether `done` came: the answer is complete (a few frames may still follow). */
  isDone(): boolean {
    return this.doneReceived;
  }

  /** The text handed on so far: the reply as the gateway has it. */
  sentText(): string {
    return this.sent;
  }

  /**
   * Reads one text frame. Handled events: `appendText`, `replaceText` (see the module comment),
   * `chainOfThought` (reasoning), `generatingImage` (its prompt is kept), `imageGenerated` (a
   * Markdown image, a paragraph of its own), `done`, `suggestedFollowups` (last), `error`. Others —
   * `received`, `startMessage`, `connected`, `partCompleted`, `citation`, `titleUpdate`,
   * `partialImageGenerated` and events Copilot adds later — give nothing.
   * @throws ProviderError `UPSTREAM_ERROR` for an `error` frame before `done` (message
   *   `upstream <id> sent an error: <its message or code>`); `UPSTREAM_BAD_RESPONSE` for a frame
   *   that is not a JSON object with an `event`, a known event without its fields, or an answer
   *   beyond `maxCharacters`.
   */
  read(frameText: string): CopilotFrameResult {
    const frame = this.parse(frameText);
    const none: CopilotFrameResult = { parts: [], last: false };
    switch (frame.event) {
      case 'appendText': {
        const { text } = this.fields(copilotTextFrameSchema, frame);
        this.copilotText += text;
        return { parts: this.text(text), last: false };
      }
      case 'replaceText': {
        const { text } = this.fields(copilotTextFrameSchema, frame);
        const before = this.copilotText;
        this.copilotText = text;
        if (text === before) return none;
        if (text.startsWith(before)) return { parts: this.text(text.slice(before.length)), last: false };
        return { parts: this.text(this.sent === '' ? text : `${this.breakBefore()}${text}`), last: false };
      }
      case 'chainOfThought': {
        const { text } = this.fields(copilotTextFrameSchema, frame);
        if (text === '') return none;
        this.count(text.length);
        this.reasoningCharacters += text.length;
        return { parts: [{ type: 'reasoning-delta', text }], last: false };
      }
      case 'generatingImage':
        this.imagePrompt = this.fields(copilotGeneratingImageFrameSchema, frame).prompt ?? undefined;
        return none;
      case 'imageGenerated': {
        const { url } = this.fields(copilotImageGeneratedFrameSchema, frame);
        const parts = this.text(`${this.sent === '' ? '' : this.breakBefore()}${imageMarkdown(url, this.imagePrompt)}`);
        this.paragraphPending = true;
        return { parts, last: false };
      }
      case 'done':
        this.doneReceived = true;
        return none;
      case 'suggestedFollowups':
        return { parts: [], last: true };
      case 'error': {
        // After `done` the answer is complete: a trailing error ends the reading, not the answer.
        if (this.doneReceived) return { parts: [], last: true };
        const { message, errorCode, code } = copilotErrorFrameSchema.safeParse(frame).data ?? {};
        const why = message || errorCode || code || shortenMessage(frameText);
        throw this.errors.error('UPSTREAM_ERROR', `upstream ${this.providerId} sent an error: ${shortenMessage(why)}`);
      }
      default:
        return none;
    }
  }

  /** The text parts for `text` (none when empty), a pending paragraph break first; counts it. */
  private text(text: string): ChatStreamPart[] {
    if (text === '') return [];
    const delta = this.paragraphPending && !text.startsWith('\n') ? `\n\n${text}` : text;
    this.paragraphPending = false;
    this.count(delta.length);
    this.sent += delta;
    return [{ type: 'text-delta', text: delta }];
  }

  /** What separates the text sent so far from a new paragraph: `\n\n`, less what it already ends with. */
  private breakBefore(): string {
    this.paragraphPending = false;
    return this.sent.endsWith('\n\n') ? '' : this.sent.endsWith('\n') ? '\n' : '\n\n';
  }

  /** @throws ProviderError `UPSTREAM_BAD_RESPONSE` when `added` more characters exceed the bound. */
  private count(added: number): void {
    if (this.sent.length + this.reasoningCharacters + added > this.maxCharacters) {
      throw this.errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${this.providerId} sent an answer longer than ${this.maxCharacters} characters`);
    }
  }

  /** The frame as a JSON object with an `event`. */
  private parse(frameText: string): { event: string } & Record<string, unknown> {
    let json: unknown;
    try {
      json = JSON.parse(frameText);
    } catch {
      throw this.errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${this.providerId} sent a frame that is not JSON`);
    }
    const parsed = copilotFrameSchema.safeParse(json);
    if (!parsed.success) throw this.errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${this.providerId} sent a frame without an event`);
    return parsed.data;
  }

  /** The fields `schema` reads of a frame of a known event. */
  private fields<Schema extends z.ZodType>(schema: Schema, frame: { event: string }): z.output<Schema> {
    const parsed = schema.safeParse(frame);
    if (!parsed.success) throw this.errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${this.providerId} sent a ${frame.event} frame of the wrong shape`);
    return parsed.data;
  }
}
