/**
 * Where a model file comes from: an `hf:<owner>/<repository>/<file>.gguf[#<revision>]` URI (a file
 * of a Hugging Face Hub repository, as node-llama-cpp names it:
 * https://node-llama-cpp.withcat.ai/guide/downloading-models#model-uris) or an http(s) URL.
 */
import { basename } from 'node:path';

/** A model file to download, parsed from its URI. */
export interface ModelSource {
  /** The URI as given (what node-llama-cpp's downloader is handed). */
  uri: string;
  /** The file name it is saved as in `MODELS_DIR`, e.g. `qwen2.5-0.5b-instruct-q4_k_m.gguf`. */
  fileName: string;
  /** The model id it will have: the file name without `.gguf`. */
  modelId: string;
  /**
   * The URL whose response headers describe the file: for a Hub file its `resolve` URL, which
   * answers with the file's size and, for files kept in Git LFS, its SHA-256 (`docs/protocols.md` §7).
   */
  metadataUrl: string;
}

/** A model URI this module cannot parse. */
export class ModelSourceError extends Error {
  override readonly name = 'ModelSourceError';
}

const HUB_FILE_URI = /^hf:([^/\s#]+)\/([^/\s#]+)\/([^\s#]+\.gguf)(?:#([^\s#]+))?$/i;

/**
 * Parses `uri`.
 * @param huggingFaceEndpoint the Hub's base URL (`HF_ENDPOINT`), without a trailing slash.
 * @throws ModelSourceError for anything but an `hf:` file URI or an http(s) URL whose path names a file.
 */
export function parseModelSource(uri: string, huggingFaceEndpoint: string): ModelSource {
  const hub = HUB_FILE_URI.exec(uri);
  if (hub) {
    const [, owner, repository, path, revision = 'main'] = hub as unknown as [string, string, string, string, string | undefined];
    const encodedPath = path.split('/').map(encodeURIComponent).join('/');
    const metadataUrl = `${huggingFaceEndpoint}/${encodeURIComponent(owner)}/${encodeURIComponent(repository)}/resolve/${encodeURIComponent(revision)}/${encodedPath}`;
    return withFileName(uri, basename(path), metadataUrl);
  }
  let url: URL | undefined;
  try {
    url = new URL(uri);
  } catch {
    // reported below
  }
  if (!url || /^(hf|huggingface):/i.test(uri)) throw new ModelSourceError(`"${uri}" is neither hf:<owner>/<repository>/<file>.gguf nor a URL`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ModelSourceError(`"${uri}" is not an http(s) URL`);
  const name = decodeURIComponent(basename(url.pathname));
  if (!name) throw new ModelSourceError(`"${uri}" names no file`);
  return withFileName(uri, name.toLowerCase().endsWith('.gguf') ? name : `${name}.gguf`, url.href);
}

function withFileName(uri: string, fileName: string, metadataUrl: string): ModelSource {
  if (fileName.startsWith('.') || /[/\\]/.test(fileName)) throw new ModelSourceError(`"${uri}" names no usable file name`);
  return { uri, fileName, modelId: fileName.slice(0, -'.gguf'.length), metadataUrl };
}
