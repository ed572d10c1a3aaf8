import { decode as decodeJpeg } from 'jpeg-js';
import { convertIndexedToRgb, decode as decodePng, hasPngSignature } from 'fast-png';
import { invalid } from '../errors.ts';
import { concat, inflateCapped } from '../util/compress.ts';

/** A decoded image: row-major, channels interleaved, values in [0, 1]. */
export interface DecodedImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Float32Array;
}

/** Sides above this are no sample image (a 1024×1024 photo is already far larger than any model input here). */
export const MAX_SIDE = 1024;

const isJpeg = (b: Uint8Array) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/**
 * PNG's IHDR and the size its image data must inflate to. fast-png inflates IDAT without a bound, so a
 * small file could expand to gigabytes (a decompression bomb); the data is first inflated here with a
 * running count that stops at the size the header implies, and only then handed to the decoder.
 */
async function checkPng(name: string, bytes: Uint8Array): Promise<void> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  let bitsPerPixel = 0;
  let interlaced = false;
  let ended = false;
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) invalid(`${name}: PNG chunk ${type} runs past the end of the file`);
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      if (length < 13) invalid(`${name}: PNG header too short`);
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      const depth = body[8]!;
      const samples = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[body[9]!];
      if (samples === undefined) invalid(`${name}: PNG colour type ${body[9]} is not a valid one`);
      bitsPerPixel = depth * samples;
      interlaced = body[12] === 1;
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') {
      ended = true;
      break;
    }
    at += 12 + length;
  }
  if (width === 0 || height === 0) invalid(`${name}: PNG without a valid header`);
  if (!ended) invalid(`${name}: PNG ends before its IEND chunk (a truncated file?)`);
  if (width > MAX_SIDE || height > MAX_SIDE) invalid(`${name}: ${width}×${height} pixels, more than ${MAX_SIDE} on a side`);
  const rowBytes = Math.ceil((width * bitsPerPixel) / 8);
  // Adam7's seven passes add at most a filter byte per row per pass and some rounding: a generous bound.
  const limit = interlaced ? 2 * height * (rowBytes + 1) + 7 * (height + 8) : height * (rowBytes + 1);
  await inflateCapped(
    concat(idat),
    'deflate',
    limit,
    () => invalid(`${name}: PNG image data inflates past the ${limit} bytes its ${width}×${height} header allows`),
    (m) => invalid(`${name}: PNG image data does not inflate (${m})`),
  );
}

/** Colour values to [0, 1], dropping an alpha channel that is fully opaque (anything else is an error). */
function toUnit(name: string, data: ArrayLike<number>, width: number, height: number, stride: number, max: number): DecodedImage {
  const hasAlpha = stride === 2 || stride === 4;
  const channels: 1 | 3 = stride >= 3 ? 3 : 1;
  const out = new Float32Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    if (hasAlpha && data[p * stride + stride - 1] !== max) invalid(`${name}: has transparent pixels; a sample image must be opaque`);
    for (let c = 0; c < channels; c++) out[p * channels + c] = data[p * stride + c]! / max;
  }
  return { width, height, channels, data: out };
}

/** A JPEG decodes to RGB; it counts as one channel when every pixel is grey (within rounding of the colour transform). */
function greyOrRgb(img: DecodedImage): DecodedImage {
  const px = img.width * img.height;
  const d = img.data;
  for (let p = 0; p < px; p++) {
    if (Math.abs(d[3 * p]! - d[3 * p + 1]!) > 2 / 255 || Math.abs(d[3 * p]! - d[3 * p + 2]!) > 2 / 255) return img;
  }
  const grey = new Float32Array(px);
  for (let p = 0; p < px; p++) grey[p] = d[3 * p]!;
  return { ...img, channels: 1, data: grey };
}

/**
 * Decodes a PNG or JPEG sample image with well-kept pure-JS decoders (they run in workerd as in Node), with
 * the bounds a hostile file needs: sides at most MAX_SIDE, PNG data inflated under a cap first, JPEG
 * decoding under jpeg-js's own resolution and memory limits. Throws an input error naming the file.
 */
export async function decodeImage(name: string, bytes: Uint8Array): Promise<DecodedImage> {
  if (hasPngSignature(bytes)) {
    await checkPng(name, bytes);
    let png, data;
    try {
      png = decodePng(bytes);
      data = png.palette ? convertIndexedToRgb(png) : png.data;
    } catch (err) {
      return invalid(`${name}: not a decodable PNG (${(err as Error).message})`);
    }
    const stride = png.palette ? png.palette[0]!.length : png.channels;
    return toUnit(name, data, png.width, png.height, stride, png.palette ? 255 : 2 ** png.depth - 1);
  }
  if (isJpeg(bytes)) {
    let jpeg;
    try {
      jpeg = decodeJpeg(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        maxResolutionInMP: (MAX_SIDE * MAX_SIDE) / 1e6,
        maxMemoryUsageInMB: 64,
      });
    } catch (err) {
      return invalid(`${name}: not a decodable JPEG (${(err as Error).message})`);
    }
    if (jpeg.width > MAX_SIDE || jpeg.height > MAX_SIDE)
      invalid(`${name}: ${jpeg.width}×${jpeg.height} pixels, more than ${MAX_SIDE} on a side`);
    return greyOrRgb(toUnit(name, jpeg.data, jpeg.width, jpeg.height, 3, 255));
  }
  return invalid(`${name}: neither a PNG nor a JPEG`);
}
