import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { encodePng } from '../../src/core/output/png.ts';
import type { SampleFile } from '../../src/core/sample/sample.ts';
import { loadFashionMnist } from '../data/fashion.ts';
import { loadGlyphs } from '../data/glyphs.ts';
import { loadMnist, type ImageSet } from '../data/mnist.ts';

/**
 * A trusted sample as a user lays it out (`<class>/<n>.png`): the first `perClass` images of each class
 * from row `from` on, so a sample can be drawn from images the evaluation does not use.
 */
export async function sampleFromSet(set: ImageSet, perClass: number, from = 0): Promise<SampleFile[]> {
  const [h, w, c] = set.shape;
  const px = h * w * c;
  const taken = new Array<number>(set.classes).fill(0);
  const files: SampleFile[] = [];
  for (let i = from; i < set.count && taken.some((t) => t < perClass); i++) {
    const k = set.labels[i]!;
    if (taken[k]! >= perClass) continue;
    const bytes = await encodePng(w, h, c as 1 | 3, set.images.subarray(i * px, (i + 1) * px));
    files.push({ path: `${k}/${taken[k]}.png`, bytes });
    taken[k]!++;
  }
  return files;
}

/** Writes sample files under `dir`, as the CLI's --clean-samples reads them. */
export function writeSampleFolder(dir: string, files: readonly SampleFile[]): void {
  for (const f of files) {
    mkdirSync(dirname(join(dir, f.path)), { recursive: true });
    writeFileSync(join(dir, f.path), f.bytes);
  }
}

const dirs = new Map<string, string>();

/**
 * A trusted-sample folder for few-shot scans in tests: `perClass` real images per class, from test images
 * the judgement does not use (MNIST and Fashion-MNIST rows from 5000 on; the glyphs' training split, their
 * test split being the judgement's whole). Written once per process.
 */
export async function sampleDir(dataset: 'mnist' | 'fashion' | 'glyphs', perClass = 10): Promise<string> {
  const key = `${dataset}-${perClass}`;
  if (!dirs.has(key)) {
    const set = dataset === 'mnist' ? loadMnist('test') : dataset === 'fashion' ? loadFashionMnist('test') : loadGlyphs('train', perClass);
    const dir = mkdtempSync(join(tmpdir(), `shapguard-sample-${key}-`));
    writeSampleFolder(dir, await sampleFromSet(set, perClass, dataset === 'glyphs' ? 0 : 5000));
    dirs.set(key, dir);
  }
  return dirs.get(key)!;
}
