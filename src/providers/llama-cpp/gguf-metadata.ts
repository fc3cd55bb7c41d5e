/**
 * Reads one metadata value of a GGUF file — its chat template — from the file's header, without
 * loading the weights or node-llama-cpp (its import costs memory that a gateway which lists local
 * models but never runs one should not pay; `listModels()` runs on every request).
 *
 * The format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md — little-endian; the magic
 * `GGUF`, a version (2 or 3: 64-bit counts and lengths), the tensor count, the metadata count, then
 * each metadata entry as a key (a length-prefixed UTF-8 string), a value type and the value.
 */
import { open, type FileHandle } from 'node:fs/promises';

/** The metadata key of the Jinja chat template (llama.cpp's `LLM_KV_TOKENIZER_CHAT_TEMPLATE`). */
const CHAT_TEMPLATE_KEY = 'tokenizer.chat_template';

/** Bytes read from the file at a time. */
const CHUNK_BYTES = 1 << 20;

/** Longest key or string value read, bytes (a longer one means a broken file, not a real header). */
const MAX_STRING_BYTES = 16 << 20;

/** Size in bytes of each fixed-size GGUF value type, by type number (8 = string and 9 = array vary). */
const FIXED_SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING_TYPE = 8;
const ARRAY_TYPE = 9;

/** Sequential reads over a file handle, buffered in chunks. */
class HeaderReader {
  private buffer = Buffer.alloc(0);
  private offset = 0;
  private filePosition = 0;

  constructor(private readonly file: FileHandle) {}

  /** Makes `length` unread bytes available. @throws Error at the end of the file. */
  private async ensure(length: number): Promise<void> {
    if (this.buffer.length - this.offset >= length) return;
    const rest = this.buffer.subarray(this.offset);
    const chunk = Buffer.alloc(Math.max(CHUNK_BYTES, length - rest.length));
    const { bytesRead } = await this.file.read(chunk, 0, chunk.length, this.filePosition);
    this.filePosition += bytesRead;
    this.buffer = Buffer.concat([rest, chunk.subarray(0, bytesRead)]);
    this.offset = 0;
    if (this.buffer.length < length) throw new Error('the GGUF header ends early');
  }

  async uint32(): Promise<number> {
    await this.ensure(4);
    const value = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  async uint64(): Promise<number> {
    await this.ensure(8);
    const value = this.buffer.readBigUInt64LE(this.offset);
    this.offset += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('a GGUF count is out of range');
    return Number(value);
  }

  async string(): Promise<string> {
    const length = await this.uint64();
    if (length > MAX_STRING_BYTES) throw new Error('a GGUF string is too long');
    await this.ensure(length);
    const value = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  async skip(length: number): Promise<void> {
    const buffered = this.buffer.length - this.offset;
    if (length <= buffered) {
      this.offset += length;
      return;
    }
    // Past the buffer: move the file position instead of reading what is skipped.
    this.filePosition += length - buffered;
    this.buffer = Buffer.alloc(0);
    this.offset = 0;
  }

  /** Skips one value of `type` (an array: its element type and count, then each element). */
  async skipValue(type: number): Promise<void> {
    if (type === STRING_TYPE) {
      const length = await this.uint64();
      return this.skip(length);
    }
    if (type === ARRAY_TYPE) {
      const elementType = await this.uint32();
      const count = await this.uint64();
      const size = FIXED_SIZES[elementType];
      if (size !== undefined) return this.skip(size * count);
      for (let index = 0; index < count; index += 1) await this.skipValue(elementType);
      return;
    }
    const size = FIXED_SIZES[type];
    if (size === undefined) throw new Error(`unknown GGUF value type ${type}`);
    return this.skip(size);
  }
}

/**
 * The chat template (`tokenizer.chat_template`) of the GGUF file at `path`, read from its header.
 * @returns the template text, or `undefined` when the file has none.
 * @throws Error when the file cannot be read or is not a GGUF file of version 2 or 3.
 */
export async function readChatTemplate(path: string): Promise<string | undefined> {
  const file = await open(path, 'r');
  try {
    const reader = new HeaderReader(file);
    if ((await reader.uint32()) !== 0x46554747) throw new Error(`${path} is not a GGUF file`);
    const version = await reader.uint32();
    if (version !== 2 && version !== 3) throw new Error(`${path} has GGUF version ${version}; versions 2 and 3 are read`);
    await reader.uint64(); // the tensor count
    const entries = await reader.uint64();
    for (let index = 0; index < entries; index += 1) {
      const key = await reader.string();
      const type = await reader.uint32();
      if (key === CHAT_TEMPLATE_KEY && type === STRING_TYPE) return await reader.string();
      await reader.skipValue(type);
    }
    return undefined;
  } finally {
    await file.close();
  }
}
