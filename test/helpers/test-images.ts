/**
 * Real image bytes for tests: solid-colour PNGs (`pngjs`) and JPEGs (`jpeg-js`) that any decoder
 * and any byte sniffer (`file-type`) accept.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** A colour as `[red, green, blue]`, each 0..255. */
export type RGB = readonly [number, number, number];

/** Fills an RGBA pixel buffer of `width`×`height` pixels with one opaque colour. */
function solidRGBA(width: number, height: number, [red, green, blue]: RGB): Buffer {
  const pixels = Buffer.alloc(width * height * 4);
  for (let offset = 0; offset < pixels.length; offset += 4) {
    pixels[offset] = red;
    pixels[offset + 1] = green;
    pixels[offset + 2] = blue;
    pixels[offset + 3] = 255;
  }
  return pixels;
}

/** A PNG of `width`×`height` pixels filled with `rgb` (8-bit RGBA, written with `PNG.sync.write`). */
export function createPng(width: number, height: number, rgb: RGB): Buffer {
  const png = new PNG({ width, height });
  solidRGBA(width, height, rgb).copy(png.data);
  return PNG.sync.write(png);
}

/** A baseline JPEG of `width`×`height` pixels filled with `rgb`, quality 90 (`jpeg-js` encode). */
export function createJpeg(width: number, height: number, rgb: RGB): Buffer {
  return jpeg.encode({ data: solidRGBA(width, height, rgb), width, height }, 90).data;
}

/** The size a PNG declares in its IHDR chunk, pixels. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  const png = PNG.sync.read(Buffer.from(bytes));
  return { width: png.width, height: png.height };
}

/** The size and first pixel of a JPEG, decoded with `jpeg-js`. */
export function decodeJpeg(bytes: Uint8Array): { width: number; height: number; firstPixel: RGB } {
  const image = jpeg.decode(bytes, { useTArray: true });
  return { width: image.width, height: image.height, firstPixel: [image.data[0]!, image.data[1]!, image.data[2]!] };
}
