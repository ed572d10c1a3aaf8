import { concat, deflateBytes } from '../util/compress.ts';
import { crc32 } from '../util/crc32.ts';

/** One PNG chunk: length, type, data and the CRC over type and data (also used by tests to build hostile files). */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes an image of values in [0, 1] (row-major, `channels` 1 or 3 interleaved) as an 8-bit PNG
 * (RFC 2083: IHDR, one zlib IDAT with filter 0 per row, IEND). Web APIs only, so the report's trigger
 * images are made the same way in workerd and Node; a few dozen lines need no image library.
 */
export async function encodePng(width: number, height: number, channels: 1 | 3, pixels: Float32Array): Promise<Uint8Array> {
  if (pixels.length !== width * height * channels) throw new Error(`encodePng: ${pixels.length} values for ${width}×${height}×${channels}`);
  const raw = new Uint8Array(height * (1 + width * channels));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * channels);
    raw[row] = 0; // filter: none
    for (let i = 0; i < width * channels; i++)
      raw[row + 1 + i] = Math.round(Math.min(1, Math.max(0, pixels[y * width * channels + i]!)) * 255);
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, channels === 1 ? 0 : 2, 0, 0, 0], 8);
  const signature = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
  return concat([
    signature,
    pngChunk('IHDR', header),
    pngChunk('IDAT', await deflateBytes(raw, 'deflate')),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}
