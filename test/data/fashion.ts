import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseIdx, type ImageSet } from './mnist.ts';

/** Where Debian's dataset-fashion-mnist package puts the data (installed by the test set-up). */
export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

export function hasFashionMnist(): boolean {
  return existsSync(join(FASHION_DIR, 't10k-images-idx3-ubyte.gz'));
}

/** Real Fashion-MNIST, `train` (60k) or `test` (10k), pixels scaled to [0, 1]; optionally only the first `limit`. */
export function loadFashionMnist(split: 'train' | 'test', limit?: number): ImageSet {
  const prefix = split === 'train' ? 'train' : 't10k';
  const read = (file: string, magic: number) => parseIdx(gunzipSync(readFileSync(join(FASHION_DIR, file))), file, magic);
  const img = read(`${prefix}-images-idx3-ubyte.gz`, 0x803);
  const lab = read(`${prefix}-labels-idx1-ubyte.gz`, 0x801);
  const count = Math.min(limit ?? img.dims[0]!, img.dims[0]!);
  const px = 28 * 28;
  const images = new Float32Array(count * px);
  for (let i = 0; i < count * px; i++) images[i] = img.body[i]! / 255;
  return { images, labels: Uint8Array.from(lab.body.subarray(0, count)), count, shape: [28, 28, 1], classes: 10 };
}
